// LoRA-Switch on the wasm backend (web_runtime/lora_switch.js): the host skips the merge call when the
// router's set (read from wasm memory, int64 low words, any order) equals the one last merged, and the
// strategy pick solves the timed runs for the merge cost and the crossover change rate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attachSwitch, pickStrategy } from '../../web_runtime/lora_switch.js';

function fakeBackend() {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const merged = [];
  const call = { step: { family: 'lora_switch', args: [7] }, args: [64], fn: () => merged.push(1) };
  return { memory, merged, call, variants: { decode: { calls: [call] } } };
}

test('merges only when the set changes, in any order', () => {
  const b = fakeBackend();
  const stats = attachSwitch(b, new Map([[7, { dtype: 'int64', shape: [1, 1, 2] }]]));
  const ids = new BigInt64Array(b.memory.buffer, 64, 2);
  const run = (x, y) => { ids[0] = BigInt(x); ids[1] = BigInt(y); b.call.host(b.call); };
  run(3, 1); run(1, 3); run(1, 3); run(2, 3); run(0, 5); run(5, 0);
  assert.deepEqual(stats, { mergeDispatches: 3, mergeSkipped: 3 });
  assert.equal(b.merged.length, 3);
});

test('pickStrategy: switch wins when merging every token still beats unfused', async () => {
  // Runs cost: decode 1 ms (+2 ms when the token differs from the last: a merge), unfused 4 ms.
  let last = null;
  let now = 0;
  const stats = { mergeDispatches: 0 };
  globalThis.performance = { now: () => now };
  const backend = {
    variants: { decode_unfused: {} },
    run: (feeds, _sinks, variant) => {
      const tok = Number(new BigInt64Array(feeds.input_ids)[0]);
      if (variant === 'decode_unfused') now += 4;
      else {
        now += 1;
        if (tok !== last) { now += 2; stats.mergeDispatches++; }
        last = tok;
      }
    },
  };
  const dec = { decode_unfused: {}, token_input: 'input_ids', position_input: 'position_ids', vocab: 50257 };
  const pick = await pickStrategy(backend, dec, stats);
  assert.equal(pick.strategy, 'switch');
  assert.equal(pick.skipMs, 1);
  assert.equal(pick.mergeMs, 3);
  assert.equal(pick.unfusedMs, 4);
  assert.equal(pick.crossoverF, 1.5);
  assert.equal(await pickStrategy({ variants: {} }, dec, stats), null);
});
