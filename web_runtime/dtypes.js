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
  // Cast-only dtypes (compiler/ir.py CAST_ONLY_BITS): only Cast reads or writes them. Pages pass and
  // get their memory image: bfloat16 bits as a Uint16Array, 8-bit floats as a Uint8Array, and the
  // 4/2-bit types packed two/four per byte (the first element in the low bits) as a Uint8Array.
  bfloat16: { bytes: 2, Array: Uint16Array, raw: true },
  float8e4m3fn: { bytes: 1, Array: Uint8Array, raw: true },
  float8e4m3fnuz: { bytes: 1, Array: Uint8Array, raw: true },
  float8e5m2: { bytes: 1, Array: Uint8Array, raw: true },
  float8e5m2fnuz: { bytes: 1, Array: Uint8Array, raw: true },
  float8e8m0: { bytes: 1, Array: Uint8Array, raw: true },
  float4e2m1: { bytes: 1, bits: 4, Array: Uint8Array, raw: true },
  int4: { bytes: 1, bits: 4, Array: Uint8Array, raw: true },
  uint4: { bytes: 1, bits: 4, Array: Uint8Array, raw: true },
  int2: { bytes: 1, bits: 2, Array: Uint8Array, raw: true },
  uint2: { bytes: 1, bits: 2, Array: Uint8Array, raw: true },
};

export const numel = (shape) => shape.reduce((a, d) => a * d, 1);

/** Bytes of `n` elements in memory (packed dtypes round up to a whole byte). */
export const tensorBytes = (dtype, n) => {
  const d = DTYPES[dtype];
  return d.bits ? Math.ceil((n * d.bits) / 8) : n * d.bytes;
};

/** Elements of the typed array that holds a tensor of `shape` (the packed bytes, for packed dtypes). */
export const arrayLength = (dtype, shape) => tensorBytes(dtype, numel(shape)) / DTYPES[dtype].bytes;

export const fmtShape = (shape) => `[${shape.join(', ')}]`;
