// LoRA-Switch (docs/lora_switch.md): the decode plan's `lora_switch_gate` step compares the router's set
// with the one the merged weights hold, and the `lora_switch` step right after it rebuilds them. On wasm
// the host reads the gate's verdict (a word of wasm memory) and skips the merge call; on WebGPU the gate
// writes the merge's indirect dispatch arguments, 0 workgroups when the set did not change, so the GPU
// skips it without a read-back, and the gate's first word counts the merges launched.
import { BundleError } from './errors.js';

/** The gate call before each merge call of every plan of `backend`, checked: [[gate, merge], ...]. */
function switchPairs(backend) {
  const pairs = [];
  for (const variant of Object.values(backend.variants)) {
    variant.calls.forEach((call, i) => {
      if (call.step.family !== 'lora_switch') return;
      const gate = variant.calls[i - 1];
      if (gate?.step.family !== 'lora_switch_gate') {
        throw new BundleError(`manifest.json: step ${call.step.id} (lora_switch) must follow its lora_switch_gate step, got ${gate ? gate.step.family : 'nothing'} before it`);
      }
      pairs.push([gate, call]);
    });
  }
  return pairs;
}

/**
 * Count a LoRA-Switch bundle's merges; on wasm also skip the merge calls the gate says are not needed.
 * Returns null for other bundles, else {count(): Promise<{merges, skipped}>} (totals since the session
 * started; WebGPU reads the gate's counter back, one small copy, and counts decode runs here) and
 * invalidate(): mark the gate invalid, so that the next decode run merges (the same set again, if the
 * router picks it: the weights stay exact).
 */
export function attachSwitch(backend) {
  const pairs = switchPairs(backend);
  if (!pairs.length) return null;
  if (!backend.memory) {
    const [gate] = pairs[0];
    const at = gate.binds[1]; // the gate tensor: [merges run, valid, ids...]
    return {
      async count() {
        const [merges] = await backend.readWords(at.storage, at.offset, 1);
        return { merges, skipped: (backend.runs.decode ?? 0) - merges };
      },
      invalidate: () => backend.writeWords(at.storage, at.offset + 4, [0]),
    };
  }
  const stats = { merges: 0, skipped: 0 };
  for (const [gate, call] of pairs) {
    call.host = (c) => {
      if (new Int32Array(backend.memory.buffer, gate.args[2], 1)[0] === 0) {
        stats.skipped++;
        return;
      }
      if (c.slot !== undefined) backend.pool.run(c.slot, c.part, c.args);
      else c.fn(...c.args);
      stats.merges++;
    };
  }
  const valid = pairs.map(([gate]) => gate.args[1] + 4);
  return {
    count: async () => ({ ...stats }),
    invalidate: () => valid.forEach((at) => { new Int32Array(backend.memory.buffer, at, 1)[0] = 0; }),
  };
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const ids64 = (list) => new BigInt64Array(list.map((v) => BigInt(v))).buffer;

/**
 * The on-device choice between the bundle's two one-token plans (compiler/switch_jit.py does the same
 * natively): time 'decode' with the gate invalidated before each run (every run merges, whatever the
 * router picks), 'decode' on one repeated token (skips) and 'decode_unfused'. Position −1: kvwrite skips
 * it and attention answers zeros, so the KV caches are untouched; the merged weights and their gate
 * always describe the set they hold, so any mix of the two plans stays exact. The pick assumes every
 * token may change the set (f = 1): 'switch' wins when even then it is faster. `mergedShare`: the share
 * of the forced runs the gate counted as merges (1 unless a run failed to merge). Returns null for a
 * bundle without both plans.
 */
export async function pickStrategy(backend, dec, counter, reps = 7) {
  if (!counter || !dec?.decode_unfused || !backend.variants?.decode_unfused) return null;
  const token = 0;
  const run = (variant) => backend.run({ [dec.token_input]: ids64([token]), [dec.position_input]: ids64([-1]) }, null, variant);
  const timed = async (variant, force = false) => {
    await run(variant); // warm-up
    const before = (await counter.count()).merges;
    const t = [];
    for (let i = 0; i < reps; i++) {
      if (force) counter.invalidate();
      const t0 = performance.now();
      await run(variant);
      t.push(performance.now() - t0);
    }
    return { ms: median(t), merged: ((await counter.count()).merges - before) / reps };
  };
  const merging = await timed('decode', true);
  const skipMs = (await timed('decode')).ms;
  const unfusedMs = (await timed('decode_unfused')).ms;
  const mergeMs = merging.ms;
  const crossoverF = mergeMs > skipMs ? (unfusedMs - skipMs) / (mergeMs - skipMs) : (unfusedMs >= skipMs ? Infinity : -Infinity);
  return { strategy: crossoverF >= 1 ? 'switch' : 'unfused', mergeMs, skipMs, unfusedMs, crossoverF, mergedShare: merging.merged };
}
