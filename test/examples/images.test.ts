import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { readIdx } from '../../src/data/idx';
import { DEFAULT_FASHION_MNIST_DIR } from '../../src/data/fashionMnist';

/** examples/images/*.png are the Fashion-MNIST test images examples/images/README.md says they are. */
describe('examples/images', () => {
  const dir = join(__dirname, '..', '..', 'examples', 'images');
  const rows = readFileSync(join(dir, 'README.md'), 'utf8')
    .split('\n')
    .map((l) => /^\| `([\w-]+\.png)` \| (\d+) \| (\d+) /.exec(l))
    .filter((m): m is RegExpExecArray => m !== null);

  it('every image is listed with its test-set index and label', () => {
    expect(rows.map((r) => r[1]).sort()).toEqual(['ankle-boot.png', 'bag.png', 'dress.png', 'pullover.png', 'shirt.png', 'sneaker.png', 't-shirt.png', 'trouser.png']);
  });

  const images = join(DEFAULT_FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz');
  it('pixels and labels match the dataset (Debian dataset-fashion-mnist; required when CI is set)', async () => {
    if (!existsSync(images)) {
      if (process.env.CI) throw new Error(`CI is set but ${images} is missing (apt-get install dataset-fashion-mnist)`);
      console.warn(`${images} not found; skipping the pixel check`);
      return;
    }
    const data = readIdx(images).data;
    const labels = readIdx(join(DEFAULT_FASHION_MNIST_DIR, 't10k-labels-idx1-ubyte.gz')).data;
    for (const [, file, index, label] of rows) {
      const { data: px, info } = await sharp(join(dir, file)).raw().toBuffer({ resolveWithObject: true });
      expect([file, info.width, info.height]).toEqual([file, 28, 28]);
      const grey = Array.from({ length: 784 }, (_, i) => px[i * info.channels]);
      const i = Number(index);
      expect([file, labels[i]]).toEqual([file, Number(label)]);
      expect([file, grey]).toEqual([file, Array.from(data.subarray(i * 784, (i + 1) * 784))]);
    }
  });
});
