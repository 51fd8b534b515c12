// The bundle's dtypes (docs/bundle.md) and how each one lives in memory and in JavaScript.
export const DTYPES = {
  float32: { bytes: 4, Array: Float32Array },
  int64: { bytes: 8, Array: BigInt64Array },
  int32: { bytes: 4, Array: Int32Array },
  bool: { bytes: 1, Array: Uint8Array },
  int8: { bytes: 1, Array: Int8Array },
  uint8: { bytes: 1, Array: Uint8Array },
  int16: { bytes: 2, Array: Int16Array },
  uint16: { bytes: 2, Array: Uint16Array },
  uint32: { bytes: 4, Array: Uint32Array },
  uint64: { bytes: 8, Array: BigUint64Array },
  // IEEE half precision has no typed array everywhere yet: its raw bits travel as a Uint16Array.
  float16: { bytes: 2, Array: Uint16Array },
  float64: { bytes: 8, Array: Float64Array },
};

export const numel = (shape) => shape.reduce((a, d) => a * d, 1);

export const fmtShape = (shape) => `[${shape.join(', ')}]`;
