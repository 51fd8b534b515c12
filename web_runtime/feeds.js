// Checking session.run() feeds against the model's inputs on the page, before the worker sees
// them, and turning each into a fresh ArrayBuffer in memory layout (the caller's arrays are
// never transferred away or modified).
import { InputError } from './errors.js';
import { DTYPES, arrayLength, fmtShape, numel } from './dtypes.js';
import { StringTable, encodeStrings } from './values.js';

function describe(v) {
  if (v === null || v === undefined) return String(v);
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) {
    const kinds = [...new Set(v.slice(0, 64).map((x) => typeof x))];
    return `${kinds.length === 1 ? kinds[0] : 'mixed'}[]`;
  }
  return typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
}

const isIntArray = (a, lo, hi) => a.every((x) => Number.isInteger(x) && x >= lo && x <= hi);

// The 8/16/32-bit integer dtypes: their own typed array, or integers that fit.
function intTypes() {
  const out = {};
  for (const [dtype, Arr, lo, hi] of [['int8', Int8Array, -128, 127], ['uint8', Uint8Array, 0, 255],
    ['int16', Int16Array, -32768, 32767], ['uint16', Uint16Array, 0, 65535], ['uint32', Uint32Array, 0, 2 ** 32 - 1]]) {
    out[dtype] = {
      accepts: `${Arr.name} or integer[] in [${lo}, ${hi}]`,
      to(d) {
        if (d instanceof Arr) return d.slice();
        if (Array.isArray(d) && isIntArray(d, lo, hi)) return Arr.from(d);
        return null;
      },
    };
  }
  return out;
}

// Per dtype: what the page may pass, and the conversion to the memory layout (null = not accepted).
const CONVERT = {
  float32: {
    accepts: 'Float32Array or number[]',
    to(d) {
      if (d instanceof Float32Array) return d.slice();
      if (Array.isArray(d) && d.every((x) => typeof x === 'number')) return Float32Array.from(d);
      return null;
    },
  },
  int64: {
    accepts: 'BigInt64Array, Int32Array, or integer/bigint[]',
    to(d) {
      if (d instanceof BigInt64Array) return d.slice();
      if (d instanceof Int32Array) return BigInt64Array.from(d, BigInt);
      if (Array.isArray(d)) {
        if (d.every((x) => typeof x === 'bigint')) return BigInt64Array.from(d);
        if (isIntArray(d, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) return BigInt64Array.from(d, BigInt);
      }
      return null;
    },
  },
  int32: {
    accepts: 'Int32Array or integer[]',
    to(d) {
      if (d instanceof Int32Array) return d.slice();
      if (Array.isArray(d) && isIntArray(d, -(2 ** 31), 2 ** 31 - 1)) return Int32Array.from(d);
      return null;
    },
  },
  ...intTypes(),
  uint64: {
    accepts: 'BigUint64Array or non-negative integer/bigint[]',
    to(d) {
      if (d instanceof BigUint64Array) return d.slice();
      if (Array.isArray(d)) {
        if (d.every((x) => typeof x === 'bigint' && x >= 0n)) return BigUint64Array.from(d);
        if (isIntArray(d, 0, Number.MAX_SAFE_INTEGER)) return BigUint64Array.from(d, BigInt);
      }
      return null;
    },
  },
  float64: {
    accepts: 'Float64Array, Float32Array or number[]',
    to(d) {
      if (d instanceof Float64Array) return d.slice();
      if (d instanceof Float32Array || (Array.isArray(d) && d.every((x) => typeof x === 'number'))) return Float64Array.from(d);
      return null;
    },
  },
  float16: {
    accepts: 'Uint16Array of IEEE half bits (or a Float16Array)',
    to(d) {
      if (d instanceof Uint16Array) return d.slice();
      if (typeof Float16Array !== 'undefined' && d instanceof Float16Array) return new Uint16Array(d.slice().buffer);
      return null;
    },
  },
  // Cast-only dtypes: their memory image (dtypes.js).
  ...Object.fromEntries(Object.entries(DTYPES).filter(([, d]) => d.raw).map(([dtype, d]) => [dtype, {
    accepts: `a ${d.Array.name} holding its ${d.bits ? 'packed ' : ''}bits`,
    to: (x) => (x instanceof d.Array ? x.slice() : null),
  }])),
  bool: {
    accepts: 'Uint8Array, boolean[] or number[]',
    // Kernels rely on bools being exactly 0 or 1.
    to(d) {
      if (d instanceof Uint8Array || (Array.isArray(d) && d.every((x) => typeof x === 'boolean' || typeof x === 'number'))) {
        return Uint8Array.from(d, (x) => (x ? 1 : 0));
      }
      return null;
    },
  },
};

function toBuffer(spec, value) {
  const { name, dtype, shape } = spec;
  let data = value;
  if (value && typeof value === 'object' && !ArrayBuffer.isView(value) && !Array.isArray(value)) {
    if (!('data' in value)) throw new InputError(`input "${name}": expected a typed array or {data, dims}, got ${describe(value)}`);
    data = value.data;
    const { dims } = value;
    if (dims !== undefined) {
      const same = Array.isArray(dims) && dims.length === shape.length && dims.every((d, i) => d === shape[i]);
      if (!same) throw new InputError(`input "${name}": expected dims ${fmtShape(shape)}, got ${Array.isArray(dims) ? fmtShape(dims) : describe(dims)}`);
    }
  }
  const conv = CONVERT[dtype];
  const arr = conv.to(data);
  if (!arr) throw new InputError(`input "${name}": expected ${dtype} data (${conv.accepts}), got ${describe(data)}`);
  const n = arrayLength(dtype, shape);
  if (arr.length !== n) {
    const what = n === numel(shape) ? 'elements' : `${DTYPES[dtype].Array.name} items`;
    throw new InputError(`input "${name}": expected ${n} ${what} (${dtype} ${fmtShape(shape)}), got ${arr.length}`);
  }
  return arr.buffer;
}

/**
 * `inputs`: the session's input metadata; `strings`: the model's string constants. Returns input name →
 * ArrayBuffer, or throws InputError. String inputs become ids in a table kept (not enumerable) as
 * `.table`, which the run's string outputs are read back through.
 */
export function prepareFeeds(feeds, inputs, strings = []) {
  if (!feeds || typeof feeds !== 'object' || Array.isArray(feeds) || ArrayBuffer.isView(feeds)) {
    throw new InputError(`run() expects an object mapping input names to tensors, got ${describe(feeds)}`);
  }
  const names = inputs.map((i) => `"${i.name}"`).join(', ');
  for (const name of Object.keys(feeds)) {
    if (!inputs.some((i) => i.name === name)) throw new InputError(`unknown input "${name}": the model's inputs are ${names}`);
  }
  const out = {};
  let table = null;
  for (const spec of inputs) {
    const what = spec.encoding === 'string' ? 'string' : spec.dtype;
    if (!(spec.name in feeds)) throw new InputError(`missing input "${spec.name}": expected ${what} ${fmtShape(spec.shape)}`);
    if (spec.encoding === 'string') out[spec.name] = encodeStrings(spec, feeds[spec.name], (table ??= new StringTable(strings)));
    else out[spec.name] = toBuffer(spec, feeds[spec.name]);
  }
  if (table) Object.defineProperty(out, 'table', { value: table, enumerable: false });
  return out;
}
