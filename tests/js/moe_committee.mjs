// The web runtime's parameter committee (web_runtime/moe.js, moe_swap.js) on a real moe-digits bundle,
// under node: every policy and size gives the bits the native runtime gave (tests/test_moe_js.py
// writes the bundle and the expected outputs to $NNJIT_TEST_MOE), and bad options are named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WasmBackend } from '../../web_runtime/backends/wasm.js';
import { prepareMoe } from '../../web_runtime/moe.js';
import { attachMoe } from '../../web_runtime/moe_swap.js';
import { InputError } from '../../web_runtime/errors.js';

const dir = process.env.NNJIT_TEST_MOE;
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));

function loadBundle() {
  const manifest = JSON.parse(readFileSync(join(dir, 'b', 'manifest.json'), 'utf8'));
  const w = readFileSync(join(dir, 'b', 'weights.bin'));
  const weights = w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength);
  const kernels = new Map(manifest.kernels.map((k) => [k.id, { file: k.file, entry: 'run', bytes: readFileSync(join(dir, 'b', k.file)) }]));
  const tensors = new Map(manifest.tensors.map((t) => [t.id, t]));
  return { manifest, tensors, weights, kernels: { wasm: kernels }, plans: { wasm: manifest.steps.map((s) => s.kernel) } };
}

async function session(moe) {
  let bundle = loadBundle();
  let state = null;
  if (moe) ({ bundle, state } = prepareMoe(bundle, moe));
  const backend = await WasmBackend.create({ ...bundle, plan: bundle.plans.wasm, kernels: bundle.kernels.wasm, relaxed: false, threads: 1 });
  if (state) await attachMoe(backend, state);
  return { backend, state, memoryBytes: bundle.manifest.memory.total_bytes };
}

const run = (backend, x) => new Float32Array(backend.run({ input: new Float32Array(x).buffer }).logits);

for (const c of expected.cases) {
  test(`${c.name}: the native runtime's bits, memory and swaps`, async () => {
    const { backend, state, memoryBytes } = await session(c.moe);
    c.outputs.forEach((want, i) => assert.deepEqual(Array.from(run(backend, expected.inputs[i])), want, `batch ${i}`));
    assert.equal(memoryBytes, c.memory_bytes);
    if (state) assert.equal(state.swaps, c.swaps);
    backend.destroy();
  });
}

test('bad committee options are named InputErrors', () => {
  const bad = [
    [{ budgetBytes: 1000 }, /moe.budgetBytes: expected at least one expert per layer \(16768 bytes/],
    [{ residentExperts: 9 }, /moe.residentExperts: expected 1..8/],
    [{ residentExperts: 1, policy: 'swap' }, /needs at least k = 2/],
    [{ residentExperts: 4, policy: 'evict' }, /moe.policy: expected one of swap, substitute, skip/],
    [{ residentExperts: 4, plan: { layers: [{ node: expected.node, ranking: [0, 1, 2, 3, 4, 5, 6, 9], similar: [] }] } }, /no experts \[9\]/],
    [{ residentExperts: 4, plan: { layers: [] } }, /no entry for MoE layer/],
  ];
  for (const [moe, re] of bad) assert.throws(() => prepareMoe(loadBundle(), moe), (e) => e instanceof InputError && re.test(e.message));
});
