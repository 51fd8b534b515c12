// Shared by the bench pages: the driver (browsers/page_runner.py) calls
// window.nnjitBench.start(config) and waits for window.nnjitBench.result.
// Inputs arrive as one binary file (each tensor at a 64-byte aligned offset, described in
// config.inputs) so MB-sized tensors never pass through JSON; outputs go back as base64.

export const ARRAYS = {
  float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array,
  int8: Int8Array, uint8: Uint8Array, bool: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  uint32: Uint32Array, uint64: BigUint64Array, float16: Uint16Array,
  // Cast-only dtypes travel as their memory image (web_runtime/dtypes.js).
  bfloat16: Uint16Array, float8e4m3fn: Uint8Array, float8e4m3fnuz: Uint8Array, float8e5m2: Uint8Array,
  float8e5m2fnuz: Uint8Array, float8e8m0: Uint8Array, float4e2m1: Uint8Array, int4: Uint8Array, uint4: Uint8Array,
  int2: Uint8Array, uint2: Uint8Array,
};

/** [{name, dtype, shape, offset, bytes}] → [{name, dtype, shape, data}], views into one fetched buffer. */
export async function loadTensors(url, specs) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`inputs: HTTP ${res.status} at ${url}`);
  const buf = await res.arrayBuffer();
  return specs.map(({ name, dtype, shape, offset, bytes, strings, value }) => {
    if (strings) return { name, dtype, shape, data: strings };
    if (value !== undefined) return { name, value: fromJson(value) };
    const Arr = ARRAYS[dtype];
    // An empty tensor may sit at an offset past the file's end (nothing was written there).
    return { name, dtype, shape, data: bytes ? new Arr(buf, offset, bytes / Arr.BYTES_PER_ELEMENT) : new Arr(0) };
  });
}

/** The raw bytes of a typed array as base64; FileReader encodes natively, fast for MBs. */
export function toBase64(typed) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result.slice(reader.result.indexOf(',') + 1));
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(new Blob([typed]));
  });
}

/** {name: {data, dims, dtype}} → {name: {dtype, dims, b64}} */
export async function encodeOutputs(outputs) {
  const out = {};
  for (const [name, t] of Object.entries(outputs)) {
    if (t === null || Array.isArray(t)) out[name] = { value: await toJson(t) };
    else if (t.dtype === 'string') out[name] = { dtype: 'string', dims: [...t.dims], strings: t.data };
    else out[name] = { dtype: t.dtype, dims: [...t.dims], b64: await toBase64(t.data) };
  }
  return out;
}

// Sequence / optional values (browsers/page_data.py): null, arrays, tensors as {dtype, shape|dims, b64}.
function fromJson(v) {
  if (v === null) return null;
  if (Array.isArray(v)) return v.map(fromJson);
  const bin = Uint8Array.from(atob(v.b64), (c) => c.charCodeAt(0));
  return { data: new ARRAYS[v.dtype](bin.buffer, 0, bin.byteLength / ARRAYS[v.dtype].BYTES_PER_ELEMENT), dims: v.shape };
}

async function toJson(v) {
  if (v === null) return null;
  if (Array.isArray(v)) return Promise.all(v.map(toJson));
  return { dtype: v.dtype, dims: [...v.dims], b64: await toBase64(v.data) };
}

/** Call `once` n times back to back; latency of each call in ms (performance.now, page clock). */
/**
 * Untimed runs until `ms` have passed (and at least one): on this machine a fresh page's runs keep
 * getting faster for about a second (browser start-up work on the other core, wasm tier-up), so a
 * fixed count of warm-up runs under-warms fast models. Both runtimes' pages use it alike.
 */
export async function warmUp(ms, once) {
  const t0 = performance.now();
  let n = 0;
  while (n === 0 || performance.now() - t0 < ms) {
    await once(n);
    n += 1;
  }
  return n;
}

export async function timeRuns(n, once) {
  const times = [];
  let last;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    last = await once(i);
    times.push(performance.now() - t0);
  }
  return { times, last };
}

/** Install `job` as the page's bench entry point; errors come back as {name, message}. */
export function expose(job) {
  const bench = { result: null };
  bench.start = (config) => {
    bench.result = null;
    job(config).then(
      (value) => { bench.result = { ok: true, value }; },
      (err) => { bench.result = { ok: false, error: { name: err?.name ?? 'Error', message: err?.message ?? String(err) } }; },
    );
  };
  window.nnjitBench = bench;
}
