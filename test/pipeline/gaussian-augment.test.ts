import { gaussianAugmented } from '../../src/pipeline/gaussian-augment';
import { arrayDataset } from '../../src/training/dataset';

/** Cohen et al.'s noise training: x + N(0, σ²), unclipped, labels untouched, seeded by the batch's rows. */
describe('gaussianAugmented', () => {
  const n = 64;
  const images = new Float32Array(n * 16).fill(0.5);
  const labels = BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 3));
  const ds = gaussianAugmented(arrayDataset(images, [1, 4, 4], labels), 0.25, 7);

  it('adds N(0, σ²) noise, unclipped, and keeps the labels', async () => {
    const b = await ds.get(Array.from({ length: n }, (_, i) => i));
    const d = Array.from(b.images, (v) => v - 0.5);
    const mean = d.reduce((a, v) => a + v, 0) / d.length;
    const sd = Math.sqrt(d.reduce((a, v) => a + (v - mean) ** 2, 0) / d.length);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sd - 0.25)).toBeLessThan(0.02);
    expect(Math.max(...b.images)).toBeGreaterThan(1); // not clipped
    expect(Array.from(b.labels!)).toEqual(Array.from(labels));
  });

  it('draws the same noise for the same rows (resumable) and other noise for others', async () => {
    const a = await ds.get([3, 9]);
    const again = await ds.get([3, 9]);
    const other = await ds.get([3, 10]);
    expect(Array.from(again.images)).toEqual(Array.from(a.images));
    expect(Array.from(other.images)).not.toEqual(Array.from(a.images));
  });
});
