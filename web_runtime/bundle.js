// Loading a bundle directory (docs/bundle.md): manifest, weights and the kernel files the plan
// uses, each checked against its sha256 before anything runs.
import { BundleError } from './errors.js';
import { DTYPES, numel } from './dtypes.js';

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

async function fetchVerified(base, file, expected) {
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

  const tensors = new Map(m.tensors.map((t) => [t.id, t]));
  const kernels = new Map(m.kernels.map((k) => [k.id, k]));
  for (const t of m.tensors) {
    need(DTYPES[t.dtype], `tensor ${t.id} has unknown dtype ${JSON.stringify(t.dtype)}`);
    need(t.storage === 'weight' || t.storage === 'arena', `tensor ${t.id} has unknown storage ${JSON.stringify(t.storage)}`);
  }
  for (const io of [...m.inputs, ...m.outputs]) {
    const t = tensors.get(io.tensor);
    need(t, `"${io.name}" refers to missing tensor ${io.tensor}`);
    need(DTYPES[io.dtype] && Array.isArray(io.shape), `"${io.name}" needs a known dtype and a shape`);
    need(t.bytes === numel(io.shape) * DTYPES[io.dtype].bytes, `"${io.name}" shape and dtype do not match tensor ${t.id}'s ${t.bytes} bytes`);
  }
  for (const s of m.steps) {
    need(kernels.has(s.kernel), `step ${s.id} uses missing kernel ${JSON.stringify(s.kernel)}`);
    need(Array.isArray(s.args) && s.args.every((a) => tensors.has(a)), `step ${s.id} refers to a missing tensor`);
  }
  return { tensors, kernels };
}

/**
 * Fetch and verify everything the plan needs on `backend`. `relaxed` picks each kernel's
 * relaxed-SIMD file where it has one; only the files that will run are fetched and hashed.
 * Returns {manifest, tensors, plan: kernel id per step, weights: ArrayBuffer,
 * kernels: Map(id → {file, entry, bytes}), fetchMs}.
 */
export async function loadBundle(url, { backend, relaxed }) {
  const t0 = performance.now();
  const base = bundleBase(url);
  let manifest;
  const text = new TextDecoder().decode(await fetchBytes(base, 'manifest.json'));
  try {
    manifest = JSON.parse(text);
  } catch (e) {
    throw new BundleError(`manifest.json: not valid JSON (${e.message})`);
  }
  const { tensors, kernels } = checkManifest(manifest);

  // A bundle compiled for several backends lists each step's kernels per backend; the default is first.
  const plan = manifest.steps.map((s) => s.candidates?.[backend]?.[0] ?? s.kernel);
  const used = [...new Set(plan)].map((id) => {
    const k = kernels.get(id);
    need(k, `no kernel ${JSON.stringify(id)} for backend ${backend}`);
    need(!k.backend || k.backend === backend, `kernel ${id} is for backend ${k.backend}, not ${backend}`);
    const variant = relaxed && k.relaxed ? k.relaxed : k;
    need(typeof variant.file === 'string' && variant.sha256, `kernel ${id} needs "file" and "sha256"`);
    return { id, file: variant.file, sha256: variant.sha256, entry: k.entry ?? 'run' };
  });
  const [weights, ...kernelBytes] = await Promise.all([
    fetchVerified(base, manifest.weights.file, manifest.weights.sha256),
    ...used.map((k) => fetchVerified(base, k.file, k.sha256)),
  ]);
  if (Number.isInteger(manifest.weights.bytes) && weights.byteLength !== manifest.weights.bytes) {
    throw new BundleError(`${manifest.weights.file}: expected ${manifest.weights.bytes} bytes, got ${weights.byteLength}`);
  }
  return {
    manifest,
    tensors,
    plan,
    weights,
    kernels: new Map(used.map((k, i) => [k.id, { file: k.file, entry: k.entry, bytes: kernelBytes[i] }])),
    fetchMs: performance.now() - t0,
  };
}
