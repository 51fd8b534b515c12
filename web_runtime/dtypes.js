// The bundle's dtypes (docs/bundle.md) and how each one lives in memory and in JavaScript.
export const DTYPES = {
  float32: { bytes: 4, Array: Float32Array },
  int64: { bytes: 8, Array: BigInt64Array },
  int32: { bytes: 4, Array: Int32Array },
  bool: { bytes: 1, Array: Uint8Array },
};

export const numel = (shape) => shape.reduce((a, d) => a * d, 1);

export const fmtShape = (shape) => `[${shape.join(', ')}]`;
