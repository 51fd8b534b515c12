// String tensors and sequence/optional values on the page (compiler/strings.py, compiler/passthrough.py).
// Strings become int32 ids of one table per run — the model's string constants first, then each new
// string fed — and string outputs come back through the same table. A sequence or optional input is
// checked against its declared type and handed back as the outputs it passes through to.
import { InputError } from './errors.js';
import { DTYPES, fmtShape, numel } from './dtypes.js';

export class StringTable {
  constructor(strings = []) {
    this.strings = [];
    this.ids = new Map();
    for (const s of strings) this.id(s);
  }

  id(s) {
    let i = this.ids.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.ids.set(s, i);
      this.strings.push(s);
    }
    return i;
  }
}

const kindOf = (v) => (v === null || v === undefined ? String(v) : Array.isArray(v) ? 'array' : ArrayBuffer.isView(v) ? v.constructor.name : typeof v);
const sameDims = (a, b) => Array.isArray(a) && a.length === b.length && a.every((d, i) => d === b[i]);

/** A string input (string[] or {data: string[], dims}) as an ArrayBuffer of its ids in `table`. */
export function encodeStrings(spec, value, table) {
  const { name, shape } = spec;
  let data = value;
  if (value && typeof value === 'object' && !Array.isArray(value) && !ArrayBuffer.isView(value)) {
    if (value.dims !== undefined && !sameDims(value.dims, shape)) {
      throw new InputError(`input "${name}": expected dims ${fmtShape(shape)}, got ${Array.isArray(value.dims) ? fmtShape(value.dims) : kindOf(value.dims)}`);
    }
    data = value.data;
  }
  if (!Array.isArray(data) || !data.every((x) => typeof x === 'string')) {
    throw new InputError(`input "${name}": expected string data (string[]), got ${kindOf(data)}`);
  }
  if (data.length !== numel(shape)) throw new InputError(`input "${name}": expected ${numel(shape)} strings (${fmtShape(shape)}), got ${data.length}`);
  return Int32Array.from(data, (s) => table.id(s)).buffer;
}

export const decodeStrings = (ids, table) => Array.from(ids, (i) => table.strings[i] ?? null);

const describe = (t) => (t.kind === 'tensor' ? `tensor(${t.dtype}${t.shape ? ` ${fmtShape(t.shape.map((d) => d ?? '?'))}` : ''})` : `${t.kind}(${describe(t.elem)})`);

function check(t, v, where) {
  if (t.kind === 'optional') return v === null || v === undefined ? null : check(t.elem, v, where);
  if (t.kind === 'sequence') {
    if (!Array.isArray(v)) throw new InputError(`${where}: expected a sequence (an array) of ${describe(t.elem)}, got ${kindOf(v)}`);
    return v.map((x, i) => check(t.elem, x, `${where}[${i}]`));
  }
  const Arr = DTYPES[t.dtype]?.Array;
  if (!v || typeof v !== 'object' || !(v.data instanceof Arr) || !Array.isArray(v.dims)) {
    throw new InputError(`${where}: expected {data: ${Arr?.name}, dims} (${describe(t)}), got ${kindOf(v?.data ?? v)}`);
  }
  const dimsOk = !t.shape || (v.dims.length === t.shape.length && t.shape.every((d, i) => d === null || d === v.dims[i]));
  if (!dimsOk || numel(v.dims) !== v.data.length) {
    throw new InputError(`${where}: expected shape ${describe(t)} holding its data, got dims ${fmtShape(v.dims)} for ${v.data.length} elements`);
  }
  return { data: v.data.slice(), dims: [...v.dims], dtype: t.dtype };
}

/** Split the passthrough inputs off `feeds`: {rest: the tensor feeds, outputs: their passthrough outputs}. */
export function takePassthrough(entries, feeds) {
  if (!entries?.length || !feeds || typeof feeds !== 'object') return { rest: feeds, outputs: {} };
  const types = new Map(entries.map((e) => [e.input, e.type]));
  const rest = {};
  for (const [k, v] of Object.entries(feeds)) if (!types.has(k)) rest[k] = v;
  const checked = {};
  for (const [name, t] of types) {
    if (!(name in feeds) && t.kind !== 'optional') throw new InputError(`missing input "${name}": expected ${describe(t)}`);
    checked[name] = check(t, feeds[name], `input "${name}"`);
  }
  return { rest, outputs: Object.fromEntries(entries.map((e) => [e.output, checked[e.input]])) };
}
