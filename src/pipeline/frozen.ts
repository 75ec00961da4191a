import { Graph } from '../onnx/graph';
import { TensorData } from '../onnx/tensor';

/**
 * Stage 2 freezes the encoder: the S2SNet must carry exactly the encoder the
 * autoencoder was trained with. These compare initializers byte for byte
 * (float equality would let -0/+0 or NaN payloads slip through).
 */
export const ENCODER_PREFIX = 'encoder.';
export const DECODER_PREFIX = 'decoder.';

function sameBytes(a: TensorData, b: TensorData): boolean {
  if (a.dataType !== b.dataType || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  const x = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return x.equals(y);
}

/** Names of the initializers under `prefix` that differ between the two graphs (missing on either side counts). */
export function differingInitializers(a: Graph, b: Graph, prefix: string): string[] {
  const names = new Set([...a.initializers.keys(), ...b.initializers.keys()].filter((n) => n.startsWith(prefix)));
  const out: string[] = [];
  for (const n of [...names].sort()) {
    const x = a.initializers.get(n);
    const y = b.initializers.get(n);
    if (!x || !y || !sameBytes(x, y)) out.push(n);
  }
  return out;
}

/** Throws unless the two graphs hold at least one `encoder.` initializer and all of them are bit-identical. */
export function assertEncoderFrozen(autoencoder: Graph, s2snet: Graph): void {
  const count = [...autoencoder.initializers.keys()].filter((n) => n.startsWith(ENCODER_PREFIX)).length;
  if (count === 0) throw new Error(`autoencoder '${autoencoder.name}' has no '${ENCODER_PREFIX}' parameters`);
  const diff = differingInitializers(autoencoder, s2snet, ENCODER_PREFIX);
  if (diff.length) throw new Error(`S2SNet encoder differs from the autoencoder's in ${diff.length} tensors (first: ${diff.slice(0, 3).join(', ')})`);
}
