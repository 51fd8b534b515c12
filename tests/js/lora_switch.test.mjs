// LoRA-Switch on the wasm backend (web_runtime/lora_switch.js): the host skips the merge call when the
// gate step's verdict (a word of wasm memory) says the set did not change, and counts both; a merge step
// without its gate step before it is a named bundle error; the strategy pick solves the timed runs for
// the merge cost and the crossover change rate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachSwitch, pickStrategy } from '../../web_runtime/lora_switch.js';

function fakeBackend() {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const merged = [];
  const gate = { step: { id: 4, family: 'lora_switch_gate', args: [7, 8, 9] }, args: [64, 96, 128] };
  const call = { step: { id: 5, family: 'lora_switch', args: [7] }, args: [64], fn: () => merged.push(1) };
  return { memory, merged, gate, call, variants: { decode: { calls: [gate, call] } } };
}

test('merges only when the gate step says so, and counts', async () => {
  const b = fakeBackend();
  const counter = attachSwitch(b);
  const go = new Int32Array(b.memory.buffer, 128, 1);
  for (const verdict of [1, 0, 0, 1, 1, 0]) {
    go[0] = verdict;
    b.call.host(b.call);
  }
  assert.deepEqual(await counter.count(), { merges: 3, skipped: 3 });
  assert.equal(b.merged.length, 3);
});

test('a merge step without its gate step before it is a named bundle error', () => {
  const b = fakeBackend();
  b.variants.decode.calls = [b.call];
  assert.throws(() => attachSwitch(b), { name: 'BundleError', message: /step 5 \(lora_switch\) must follow its lora_switch_gate step, got nothing/ });
  assert.equal(attachSwitch({ variants: { main: { calls: [] } } }), null);
});

test('pickStrategy: forced merges, skips and unfused runs give the crossover', async () => {
  // Runs cost: decode 1 ms (+2 ms when the gate was invalidated: a merge), unfused 4 ms.
  let now = 0;
  let invalid = false;
  const stats = { merges: 0 };
  const counter = { count: async () => ({ ...stats }), invalidate: () => { invalid = true; } };
  globalThis.performance = { now: () => now };
  const backend = {
    variants: { decode_unfused: {} },
    run: (feeds, _sinks, variant) => {
      assert.equal(Number(new BigInt64Array(feeds.position_ids)[0]), -1); // the caches stay untouched
      if (variant === 'decode_unfused') now += 4;
      else {
        now += 1;
        if (invalid) { now += 2; stats.merges++; invalid = false; }
      }
    },
  };
  const dec = { decode_unfused: {}, token_input: 'input_ids', position_input: 'position_ids', vocab: 50257 };
  const pick = await pickStrategy(backend, dec, counter);
  assert.deepEqual(pick, { strategy: 'switch', mergeMs: 3, skipMs: 1, unfusedMs: 4, crossoverF: 1.5, mergedShare: 1 });
  assert.equal(await pickStrategy({ variants: {} }, dec, counter), null);
  assert.equal(await pickStrategy(backend, dec, null), null);
});
