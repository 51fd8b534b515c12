// The parameter committee in the browser (docs/moe.md), the same contract as compiler/moe_runtime.py:
// only R experts per MoE layer live in wasm memory; each layer's whole expert store is a Float32Array
// outside it (a plain ArrayBuffer: the JS heap pays for it, the wasm instance does not — the saving is
// the wasm memory, which cannot shrink once grown, and is what a GPU buffer would hold).
// prepareMoe() compacts the bundle before the backend is built; attachMoe() fills the slots, writes
// the slot tables and, for policy 'swap', puts a host step in front of each moe kernel.
import { InputError } from './errors.js';

export const POLICIES = ['swap', 'substitute', 'skip'];
const ALIGN = 256;
const align = (n) => Math.ceil(n / ALIGN) * ALIGN;

function layersOf(manifest, tensors, weights) {
  const kernels = new Map(manifest.kernels.map((k) => [k.id, k]));
  return manifest.steps.filter((s) => s.family === 'moe').map((step) => {
    const c = kernels.get(step.kernel).config;
    const st = tensors.get(step.args[4]);
    const store = new Float32Array(weights.slice(st.offset, st.offset + st.bytes));
    return { step, E: c.E, k: c.k, H: c.H, slotBytes: c.slot_bytes, storeTid: step.args[4], tableTid: step.args[3], store };
  });
}

function residentCount(layers, options) {
  const E = Math.min(...layers.map((l) => l.E));
  const perExpert = layers.reduce((a, l) => a + l.slotBytes, 0);
  if ('residentExperts' in options && 'budgetBytes' in options) throw new InputError('moe options: give residentExperts or budgetBytes, not both');
  if ('budgetBytes' in options) {
    const b = options.budgetBytes;
    if (!Number.isInteger(b) || b < perExpert) {
      throw new InputError(`moe.budgetBytes: expected at least one expert per layer (${perExpert} bytes over ${layers.length} MoE layer(s)), got ${JSON.stringify(b)}`);
    }
    return Math.min(E, Math.floor(b / perExpert));
  }
  const r = options.residentExperts ?? E;
  if (!Number.isInteger(r) || r < 1 || r > E) throw new InputError(`moe.residentExperts: expected 1..${E} (the experts per layer), got ${JSON.stringify(r)}`);
  return r;
}

/** Without a plan: the other experts by relative squared distance of their packed weights (as compiler/moe_plan.py). */
function weightRanking(layer) {
  const n = layer.store.length / layer.E;
  const row = (e) => layer.store.subarray(e * n, (e + 1) * n);
  const out = [];
  for (let e = 0; e < layer.E; e++) {
    const a = row(e);
    let norm = 0;
    for (let i = 0; i < n; i++) norm += a[i] * a[i];
    const d = [];
    for (let c = 0; c < layer.E; c++) {
      if (c === e) continue;
      const b = row(c);
      let s = 0;
      for (let i = 0; i < n; i++) s += (b[i] - a[i]) ** 2;
      d.push([s / Math.max(norm, 1e-30), c]);
    }
    out.push(d.sort((x, y) => x[0] - y[0] || x[1] - y[1]).map(([, c]) => c));
  }
  return out;
}

function applyPlan(layers, plan, R) {
  const byNode = new Map((plan?.layers ?? []).map((l) => [l.node, l]));
  for (const layer of layers) {
    const entry = byNode.get(layer.step.node);
    if (plan && !entry) throw new InputError(`moe.plan: no entry for MoE layer ${JSON.stringify(layer.step.node)}; the plan has ${JSON.stringify([...byNode.keys()].sort())}`);
    if (!entry) {
      layer.committee = Array.from({ length: R }, (_, i) => i);
      layer.similar = weightRanking(layer);
      continue;
    }
    const { ranking, similar } = entry;
    const perm = (a) => a.length === layer.E && [...a].sort((x, y) => x - y).every((v, i) => v === i);
    if (!Array.isArray(ranking) || !perm(ranking)) {
      const bad = (Array.isArray(ranking) ? ranking : []).filter((e) => !(Number.isInteger(e) && e >= 0 && e < layer.E));
      throw new InputError(`moe.plan: layer ${JSON.stringify(layer.step.node)} ranking: expected a permutation of experts 0..${layer.E - 1}, got ${JSON.stringify(ranking)}${bad.length ? ` (no experts ${JSON.stringify(bad)})` : ''}`);
    }
    if (!Array.isArray(similar) || similar.length !== layer.E || !similar.every((row, e) => Array.isArray(row) && perm([...row, e]))) {
      throw new InputError(`moe.plan: layer ${JSON.stringify(layer.step.node)} similar: expected for each of ${layer.E} experts the other experts' ids`);
    }
    layer.committee = ranking.slice(0, R);
    layer.similar = similar;
  }
}

/**
 * `bundle`: what loadBundle() returned (manifest, tensors, weights, …); `options`: {residentExperts |
 * budgetBytes, policy ('swap' default), plan (the JSON `nnjit moe-plan` wrote, as an object)}.
 * Returns {bundle: a copy with each store cut to R slots, state: what attachMoe needs}.
 */
export function prepareMoe(bundle, options) {
  const unknown = Object.keys(options).filter((k) => !['residentExperts', 'budgetBytes', 'policy', 'plan'].includes(k));
  if (unknown.length) throw new InputError(`moe options: unknown ${JSON.stringify(unknown)}; expected residentExperts | budgetBytes, policy, plan`);
  const policy = options.policy ?? 'swap';
  if (!POLICIES.includes(policy)) throw new InputError(`moe.policy: expected one of ${POLICIES.join(', ')}, got ${JSON.stringify(policy)}`);
  const { manifest, tensors, weights } = bundle;
  const layers = layersOf(manifest, tensors, weights);
  if (!layers.length) throw new InputError('moe options given, but the bundle has no MoE layer (no moe step)');
  const R = residentCount(layers, options);
  const k = Math.max(...layers.map((l) => l.k));
  if (policy === 'swap' && R < k) throw new InputError(`moe.residentExperts: policy 'swap' needs at least k = ${k} resident experts per layer, got ${R}`);
  applyPlan(layers, options.plan ?? null, R);
  const cuts = [...new Set(layers.map((l) => {
    const off = tensors.get(l.storeTid).offset;
    return `${off + align(R * l.slotBytes)},${off + align(l.E * l.slotBytes)}`;
  }))].map((s) => s.split(',').map(Number)).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const kept = [];
  let prev = 0;
  for (const [a, b] of cuts) {
    kept.push([prev, a]);
    prev = b;
  }
  kept.push([prev, weights.byteLength]);
  const image = new Uint8Array(kept.reduce((s, [a, b]) => s + b - a, 0));
  let at = 0;
  for (const [a, b] of kept) {
    image.set(new Uint8Array(weights, a, b - a), at);
    at += b - a;
  }
  const moved = (off) => off - cuts.reduce((s, [a, b]) => s + (b <= off ? b - a : 0), 0);
  const newTensors = new Map([...tensors].map(([id, t]) => [id, t.storage === 'weight' ? { ...t, offset: moved(t.offset) } : t]));
  for (const l of layers) Object.assign(newTensors.get(l.storeTid), { shape: [R, l.slotBytes / 4], bytes: R * l.slotBytes });
  const mem = { ...manifest.memory };
  mem.arena_base = mem.weights_base + align(image.byteLength);
  mem.total_bytes = mem.arena_base + mem.arena_bytes + 64;
  const compacted = { ...bundle, manifest: { ...manifest, memory: mem }, tensors: newTensors, weights: image.buffer };
  const state = { policy, R, layers, swaps: 0, swapBytes: 0, clock: 0,
    residentExpertBytes: R * layers.reduce((s, l) => s + l.slotBytes, 0),
    storeBytes: layers.reduce((s, l) => s + l.E * l.slotBytes, 0) };
  return { bundle: compacted, state };
}
