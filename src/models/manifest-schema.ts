/**
 * JSON Schema (draft-07, checked with ajv) of models/<set>/manifest.json,
 * schemaVersion 1. docs/manifest.md describes each field; keep the two in step.
 * Objects stay open to extra keys (trainers record more than the service
 * reads) except defence stages, where an unknown key is more likely a typo
 * that would silently weaken the defence.
 */
const fileRef = {
  type: 'object',
  required: ['path', 'sha256'],
  properties: {
    path: { type: 'string', minLength: 1, pattern: '^(?!/)(?!.*(^|/)\\.\\.(/|$)).+$' },
    sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
  },
} as const;

const stage = {
  oneOf: [
    { type: 'object', required: ['stage'], additionalProperties: false, properties: { stage: { const: 'noise' } } },
    { type: 'object', required: ['stage'], additionalProperties: false, properties: { stage: { const: 's2snet' } } },
    { type: 'object', required: ['stage'], additionalProperties: false, properties: { stage: { const: 'autoencoder' } } },
    {
      type: 'object',
      required: ['stage', 'bits'],
      additionalProperties: false,
      properties: { stage: { const: 'bitDepth' }, bits: { type: 'integer', minimum: 1, maximum: 8 } },
    },
  ],
} as const;

export const manifestSchema = {
  $id: 'https://s2snet-proxy/manifest-v1.json',
  type: 'object',
  required: ['schemaVersion', 'name', 'version', 'input', 'labels', 'files', 'defence', 'noise', 'detection'],
  properties: {
    schemaVersion: { const: 1 },
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' },
    version: { type: 'string', minLength: 1, maxLength: 64 },
    description: { type: 'string' },
    input: {
      type: 'object',
      required: ['channels', 'height', 'width', 'layout', 'range', 'mean', 'std'],
      properties: {
        channels: { enum: [1, 3] },
        height: { type: 'integer', minimum: 1, maximum: 4096 },
        width: { type: 'integer', minimum: 1, maximum: 4096 },
        layout: { const: 'NCHW' },
        range: { type: 'array', items: [{ const: 0 }, { const: 1 }], minItems: 2, maxItems: 2 },
        mean: { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 3 },
        std: { type: 'array', items: { type: 'number', exclusiveMinimum: 0 }, minItems: 1, maxItems: 3 },
        resize: { enum: ['cover', 'contain', 'fill'] },
      },
    },
    labels: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 2 },
    files: {
      type: 'object',
      required: ['classifier'],
      properties: { classifier: fileRef, s2snet: fileRef, autoencoder: fileRef, defended: fileRef },
      additionalProperties: fileRef,
    },
    defence: {
      type: 'object',
      required: ['chain'],
      properties: { chain: { type: 'array', items: stage, minItems: 1 } },
    },
    noise: {
      type: 'object',
      required: ['kind', 'sigma', 'maxSigma'],
      properties: {
        kind: { enum: ['gaussian', 'uniform', 'sign'] },
        sigma: { type: 'number', minimum: 0, maximum: 1 },
        maxSigma: { type: 'number', minimum: 0, maximum: 1 },
      },
    },
    detection: {
      type: 'object',
      required: ['threshold'],
      properties: {
        threshold: { type: 'number', minimum: 0 },
        falsePositiveRate: { type: 'number', minimum: 0, maximum: 1 },
        calibration: { type: 'string' },
      },
    },
    smoothing: {
      type: 'object',
      required: ['sigma', 'denoiser', 'clip'],
      properties: {
        sigma: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
        denoiser: { type: 'string', minLength: 1 },
        clip: { type: 'boolean' },
        training: { type: 'object' },
      },
    },
    metrics: { type: 'object' },
  },
} as const;
