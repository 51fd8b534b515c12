// Loading a bundle directory (docs/bundle.md): manifest, weights and the kernel files the plan
// uses, each checked against its sha256 before anything runs.
import { BundleError } from './errors.js';
import { DTYPES, numel, tensorBytes } from './dtypes.js';

export const FORMAT = 'nnjit-bundle';
export const VERSION = 1;

/** `url` names the bundle directory or its manifest.json; returns the directory URL (ending in "/"). */
export function bundleBase(url) {
  const u = new URL(url, globalThis.location?.href);
  if (u.pathname.endsWith('.json')) return new URL('.', u).href;
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return u.href;
}

async function fetchBytes(base, file) {
  const url = new URL(file, base).href;
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new BundleError(`${file}: fetch failed (${e.message}) at ${url}`);
  }
  if (!res.ok) throw new BundleError(`${file}: HTTP ${res.status} at ${url}`);
  return res.arrayBuffer();
}

async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) {
    // crypto.subtle exists only in secure contexts (https, localhost, 127.0.0.1).
    throw new BundleError('cannot verify sha256: crypto.subtle is unavailable (serve the page over https or from localhost)');
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function fetchVerified(base, file, expected) {
  const bytes = await fetchBytes(base, file);
  const actual = await sha256Hex(bytes);
  if (actual !== String(expected).toLowerCase()) {
    throw new BundleError(`${file}: sha256 mismatch: expected ${expected}, got ${actual}`);
  }
  return bytes;
}

function need(cond, what) {
  if (!cond) throw new BundleError(`manifest.json: ${what}`);
}

/** Structural checks, so that a malformed manifest fails with a BundleError instead of a TypeError later. */
export function checkManifest(m) {
  need(m && typeof m === 'object', 'not a JSON object');
  need(m.format === FORMAT && m.version === VERSION,
    `expected format "${FORMAT}" version ${VERSION}, got format ${JSON.stringify(m.format)} version ${JSON.stringify(m.version)}`);
  for (const key of ['inputs', 'outputs', 'tensors', 'steps', 'kernels']) need(Array.isArray(m[key]), `"${key}" must be a list`);
  need(m.memory && Number.isInteger(m.memory.total_bytes), '"memory.total_bytes" is missing');
  need(m.weights && typeof m.weights.file === 'string' && m.weights.sha256, '"weights" needs "file" and "sha256"');

  const isNat = (v) => Number.isSafeInteger(v) && v >= 0;
  const got = (v) => { const j = JSON.stringify(v); return j === undefined ? String(v) : j.length > 80 ? `${j.slice(0, 77)}...` : j; };
  const field = (name, ok, expected, v) => need(ok, `${name}: expected ${expected}, got ${got(v)}`);
  const isShape = (v) => Array.isArray(v) && v.length <= 16 && v.every((d) => isNat(d) && d < 2 ** 32);
  const mem = m.memory;
  for (const key of ['total_bytes', 'weights_base', 'arena_base', 'arena_bytes']) {
    field(`memory.${key}`, isNat(mem[key]), 'an integer >= 0', mem[key]);
  }
  field('memory.total_bytes', mem.total_bytes >= 1 && mem.total_bytes <= 2 ** 32, 'between 1 and 4 GiB', mem.total_bytes);
  field('weights.bytes', isNat(m.weights.bytes), 'an integer >= 0', m.weights.bytes);
  const safeFile = (f) => typeof f === 'string' && f.length > 0 && !f.startsWith('/') && !f.includes('\\') && !f.split('/').includes('..') && !/^[a-z]+:/i.test(f) && !/[\x00-\x1f]/.test(f);
  field('weights.file', safeFile(m.weights.file), 'a relative path inside the bundle', m.weights.file);
  checkWeightsEncoding(m.weights, field, isNat);
  // The spans against memory.total_bytes are the wasm backend's check (WebGPU binds the arena and the
  // weights as their own buffers); every tensor must lie inside its arena or weights here.

  m.tensors.forEach((t, k) => {
    const f = `tensors[${k}]`;
    need(t && typeof t === 'object', `${f}: expected an object, got ${got(t)}`);
    field(`${f}.id`, t.id === k, `${k} (a tensor's id is its index)`, t.id);
    field(`${f}.dtype`, Object.hasOwn(DTYPES, t.dtype), `one of ${Object.keys(DTYPES).join(', ')}`, t.dtype);
    field(`${f}.storage`, t.storage === 'weight' || t.storage === 'arena', '"weight" or "arena"', t.storage);
    field(`${f}.shape`, isShape(t.shape), 'a list of integer dims >= 0', t.shape);
    const want = tensorBytes(t.dtype, numel(t.shape));
    field(`${f}.bytes`, t.bytes === want, `${want} (shape and dtype)`, t.bytes);
    field(`${f}.offset`, isNat(t.offset), 'an integer >= 0', t.offset);
    const limit = t.storage === 'weight' ? m.weights.bytes : mem.arena_bytes;
    field(`${f}.offset + bytes`, t.offset + t.bytes <= limit,
      `<= ${t.storage === 'weight' ? 'weights.bytes' : 'memory.arena_bytes'} (${limit})`, t.offset + t.bytes);
  });
  const tensors = new Map(m.tensors.map((t) => [t.id, t]));
  m.kernels.forEach((k, i) => {
    need(k && typeof k === 'object', `kernels[${i}]: expected an object, got ${got(k)}`);
    field(`kernels[${i}].id`, typeof k.id === 'string', 'a kernel id string', k.id);
    field(`kernels[${i}].file`, safeFile(k.file), 'a relative path inside the bundle', k.file);
    if (k.relaxed != null) field(`kernels[${i}].relaxed.file`, safeFile(k.relaxed.file), 'a relative path inside the bundle', k.relaxed.file);
  });
  const kernels = new Map(m.kernels.map((k) => [k.id, k]));
  for (const io of [...m.inputs, ...m.outputs]) {
    need(io && typeof io === 'object', `an input/output is not an object: ${got(io)}`);
    const t = tensors.get(io.tensor);
    need(t, `"${io.name}" refers to missing tensor ${io.tensor}`);
    need(Object.hasOwn(DTYPES, io.dtype) && isShape(io.shape), `"${io.name}" needs a known dtype and a shape`);
    need(t.bytes === tensorBytes(io.dtype, numel(io.shape)), `"${io.name}" shape and dtype do not match tensor ${t.id}'s ${t.bytes} bytes`);
  }
  for (const s of m.steps) {
    need(s && typeof s === 'object', `a step is not an object: ${got(s)}`);
    need(kernels.has(s.kernel), `step ${s.id} uses missing kernel ${JSON.stringify(s.kernel)}`);
    need(Array.isArray(s.args) && s.args.every((a) => tensors.has(a)), `step ${s.id} refers to a missing tensor`);
    if (s.candidates !== undefined) {
      need(s.candidates && typeof s.candidates === 'object' && !Array.isArray(s.candidates), `step ${s.id}: "candidates" must be an object`);
      for (const [backend, ids] of Object.entries(s.candidates)) {
        need(Array.isArray(ids) && ids.every((id) => kernels.has(id)), `step ${s.id}: candidates.${backend} refers to a missing kernel: ${got(ids)}`);
      }
    }
  }
  return { tensors, kernels };
}

/**
 * Fetch and check manifest.json. Returns {base, manifest, tensors, kernels, fetchMs}: what
 * loadBundle() and fetchWeights() need, before any backend is chosen.
 */
export async function openBundle(url) {
  const t0 = performance.now();
  const base = bundleBase(url);
  let manifest;
  const text = new TextDecoder().decode(await fetchBytes(base, 'manifest.json'));
  try {
    manifest = JSON.parse(text);
  } catch (e) {
    throw new BundleError(`manifest.json: not valid JSON (${e.message})`);
  }
  return { base, manifest, ...checkManifest(manifest), fetchMs: performance.now() - t0 };
}

// The step's kernel on `backend`: the first candidate made for this device class ('gpu', or 'cpu' for
// CPU-emulated adapters such as SwiftShader, where barriers are expensive and other schedules win),
// else the default candidate; for wasm also the step's own `kernel` (bundles from before per-backend
// candidates list only that).
function kernelFor(step, backend, kernels = null, deviceClass = null) {
  const list = step.candidates?.[backend];
  if (!list?.length) return backend === 'wasm' ? step.kernel : undefined;
  if (kernels && deviceClass) {
    const fit = list.find((id) => [undefined, 'any', deviceClass].includes(kernels.get(id)?.device_class));
    if (fit !== undefined) return fit;
  }
  return list[0];
}

/** 'step 3 (Conv conv_0)': how errors name a step. */
export const describeStep = (s) => `step ${s.id} (${s.op}${s.node ? ` ${s.node}` : ''})`;

/** null when every step has a webgpu kernel, else why not (naming the first step without one). */
export function webgpuGap({ manifest }) {
  const step = [...manifest.steps, ...(manifest.decoder?.decode?.steps ?? [])].find((s) => kernelFor(s, 'webgpu') === undefined);
  return step ? `the bundle has no webgpu kernel for ${describeStep(step)}` : null;
}

function kernelEntry(k, backend, relaxed) {
  const variant = backend === 'wasm' && relaxed && k.relaxed ? k.relaxed : k;
  need(typeof variant.file === 'string' && variant.sha256, `kernel ${k.id} needs "file" and "sha256"`);
  const entry = { id: k.id, file: variant.file, sha256: variant.sha256, entry: k.entry ?? (backend === 'wasm' ? 'run' : 'main') };
  if (backend === 'webgpu') {
    const d = k.dispatch;
    need(Array.isArray(d) && d.length === 3 && d.every((n) => Number.isInteger(n) && n >= 1),
      `webgpu kernel ${k.id} needs "dispatch": [x, y, z] workgroup counts ≥ 1, got ${JSON.stringify(d)}`);
    entry.dispatch = d;
  }
  return entry;
}

/**
 * Fetch and verify weights.bin and the kernel files the plan runs on each of `backends`;
 * `relaxed` picks each wasm kernel's relaxed-SIMD file where it has one. Only the files that may
 * run are fetched and hashed. Returns {manifest, tensors, plans: backend → kernel id per step,
 * kernels: backend → Map(id → {file, entry, bytes, dispatch?}), weights: ArrayBuffer, fetchMs}.
 */
export async function loadBundle(opened, { backends, relaxed, deviceClass = null }) {
  const t0 = performance.now();
  const { base, manifest, tensors, kernels } = opened;
  const plans = {};
  const used = [];
  const planOf = (steps, backend) => steps.map((s) => {
    const id = kernelFor(s, backend, kernels, backend === 'webgpu' ? deviceClass : null);
    need(id !== undefined, `${describeStep(s)} has no ${backend} kernel`);
    return id;
  });
  for (const backend of backends) {
    plans[backend] = planOf(manifest.steps, backend);
    // A decoder bundle's one-token plan (docs/decoders.md) runs over the same memory.
    const decode = manifest.decoder ? planOf(manifest.decoder.decode.steps, backend) : [];
    if (decode.length) plans[`${backend}:decode`] = decode;
    // A LoRA-Switch bundle's other one-token strategy (docs/lora_switch.md); the runtime picks one.
    const unfused = manifest.decoder?.decode_unfused ? planOf(manifest.decoder.decode_unfused.steps, backend) : [];
    if (unfused.length) plans[`${backend}:decode_unfused`] = unfused;
    for (const id of new Set([...plans[backend], ...decode, ...unfused])) {
      const k = kernels.get(id);
      need(k, `no kernel ${JSON.stringify(id)} for backend ${backend}`);
      need((k.backend ?? 'wasm') === backend, `kernel ${id} is for backend ${k.backend ?? 'wasm'}, not ${backend}`);
      used.push({ backend, ...kernelEntry(k, backend, relaxed) });
    }
  }
  const [weights, ...kernelBytes] = await Promise.all([
    fetchWeights(opened),
    ...used.map((k) => fetchVerified(base, k.file, k.sha256)),
  ]);
  const byBackend = Object.fromEntries(backends.map((b) => [b, new Map()]));
  used.forEach(({ backend, id, sha256, ...k }, i) => byBackend[backend].set(id, { ...k, bytes: kernelBytes[i] }));
  return { manifest, tensors, plans, kernels: byBackend, weights, fetchMs: opened.fetchMs + performance.now() - t0 };
}

/** weights.bin's encoding (compiler/weights_codec.py): 'f32', or 'f16' with segments tiling the memory image. */
function checkWeightsEncoding(w, field, isNat) {
  const enc = w.encoding ?? 'f32';
  field('weights.encoding', enc === 'f32' || enc === 'f16', '"f32" or "f16"', enc);
  if (enc === 'f32') return;
  field('weights.segments', Array.isArray(w.segments), 'a list of [offset, bytes, kind]', w.segments);
  let pos = 0;
  let fileBytes = 0;
  w.segments.forEach((seg, k) => {
    const ok = Array.isArray(seg) && seg.length === 3 && seg[0] === pos && isNat(seg[1]) && seg[1] > 0
      && (seg[2] === 'raw' || (seg[2] === 'f16' && seg[1] % 4 === 0 && seg[0] % 4 === 0));
    field(`weights.segments[${k}]`, ok, `[${pos}, bytes > 0 (a multiple of 4 for f16), "f16" | "raw"]`, seg);
    pos += seg[1];
    fileBytes += seg[2] === 'f16' ? seg[1] / 2 : seg[1];
  });
  field('weights.segments', pos === w.bytes, `to cover weights.bytes (${w.bytes})`, pos);
  field('weights.file_bytes', w.file_bytes === fileBytes, `${fileBytes} (from the segments)`, w.file_bytes);
}

let halfTable = null;

/** float32 values of all 65536 half-float bit patterns (exact: every half is a float32). */
function halfToFloat() {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    halfTable[h] = e === 0 ? sign * f * 2 ** -24 : e === 31 ? (f ? NaN : sign * Infinity) : sign * (1 + f / 1024) * 2 ** (e - 15);
  }
  return halfTable;
}

/** The memory image of an f16-encoded weights file: half floats widened, raw segments copied. */
function expandWeights(data, w) {
  if (data.byteLength !== w.file_bytes) throw new BundleError(`${w.file}: expected ${w.file_bytes} bytes, got ${data.byteLength}`);
  const out = new ArrayBuffer(w.bytes);
  const bytes = new Uint8Array(out);
  const table = halfToFloat();
  let at = 0;
  for (const [off, n, kind] of w.segments) {
    if (kind === 'f16') {
      // A copy when the half floats sit at an odd byte offset of the file (after an odd-sized raw segment).
      const src = at % 2 ? new Uint16Array(data.slice(at, at + n / 2)) : new Uint16Array(data, at, n / 4);
      const dst = new Float32Array(out, off, n / 4);
      for (let i = 0; i < dst.length; i++) dst[i] = table[src[i]];
      at += n / 2;
    } else {
      bytes.set(new Uint8Array(data, at, n), off);
      at += n;
    }
  }
  return out;
}

/** weights.bin, verified and expanded to the memory image; also what a GPU session re-fetches when it falls back to wasm. */
export async function fetchWeights({ base, manifest }) {
  const w = manifest.weights;
  const data = await fetchVerified(base, w.file, w.sha256);
  if ((w.encoding ?? 'f32') === 'f16') return expandWeights(data, w);
  if (Number.isInteger(w.bytes) && data.byteLength !== w.bytes) {
    throw new BundleError(`${w.file}: expected ${w.bytes} bytes, got ${data.byteLength}`);
  }
  return data;
}

/** One kernel's file, verified: what the tuner fetches for a candidate the plan did not load. */
export async function fetchKernel({ base, kernels }, id, { relaxed = false, backend = 'wasm' } = {}) {
  const k = kernels.get(id);
  need(k && (k.backend ?? 'wasm') === backend, `no ${backend} kernel ${JSON.stringify(id)}`);
  const { sha256, ...entry } = kernelEntry(k, backend, relaxed);
  return { ...entry, bytes: await fetchVerified(base, entry.file, sha256) };
}
