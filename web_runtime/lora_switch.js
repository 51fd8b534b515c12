// LoRA-Switch (docs/lora_switch.md) on the wasm backend: the decode plan's `lora_switch` step rebuilds
// every switched projection's merged weights for the adapter set the router just picked. A token
// whose set equals the one last merged needs no merge: the host reads the k indices from wasm memory
// (a few bytes, right after the router's steps wrote them) and skips the call, counting both.

/** Wrap every lora_switch call of `backend` (a WasmBackend); returns the live counters. */
export function attachSwitch(backend, tensors) {
  const stats = { mergeDispatches: 0, mergeSkipped: 0 };
  for (const variant of Object.values(backend.variants)) {
    for (const call of variant.calls) {
      if (call.step.family !== 'lora_switch') continue;
      const ids = tensors.get(call.step.args[0]);
      const stride = ids.dtype === 'int64' ? 2 : 1; // an index is far below 2^31: its low word is enough
      const k = ids.shape[ids.shape.length - 1];
      let merged = null; // the set the merged weights hold; null until the first merge
      call.host = (c) => {
        const words = new Int32Array(backend.memory.buffer, c.args[0], k * stride);
        const set = [];
        for (let j = 0; j < k; j++) set.push(words[j * stride]);
        const key = set.sort((a, b) => a - b).join(',');
        if (key === merged) {
          stats.mergeSkipped++;
          return;
        }
        if (c.slot !== undefined) backend.pool.run(c.slot, c.part, c.args);
        else c.fn(...c.args);
        merged = key;
        stats.mergeDispatches++;
      };
    }
  }
  return stats;
}

const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const ids64 = (list) => new BigInt64Array(list.map((v) => BigInt(v))).buffer;

/**
 * The on-device choice between the bundle's two one-token plans (compiler/switch_jit.py does the same
 * natively): time 'decode' over tokens spread across the vocabulary (their sets mostly differ: merges),
 * 'decode' on one repeated token (skips) and 'decode_unfused'. Position −1: kvwrite skips it and
 * attention answers zeros, so the KV caches are untouched; the merged weights and their gate always
 * describe the set they hold, so any mix of the two plans stays exact. `stats` (wasm) counts the merges
 * the timed runs made; without it (WebGPU, no read-back) every spread run is taken to have merged, which
 * understates the merge when some spread tokens share a set (an error towards 'switch'; reading the
 * gate's merge counter back once after these runs would fix it). The pick assumes every token may change
 * the set (f = 1): 'switch' wins when even then it is faster. Returns null for a bundle without both plans.
 */
export async function pickStrategy(backend, dec, stats = null, reps = 7) {
  if (!dec?.decode_unfused || !backend.variants?.decode_unfused) return null;
  const run = (variant, token) => backend.run({ [dec.token_input]: ids64([token]), [dec.position_input]: ids64([-1]) }, null, variant);
  const spread = Array.from({ length: reps + 1 }, (_, i) => (i * 7919) % dec.vocab);
  const timed = async (variant, tokens) => {
    await run(variant, tokens[0]); // warm-up
    const before = stats?.mergeDispatches ?? 0;
    const t = [];
    for (const tok of tokens.slice(1)) {
      const t0 = performance.now();
      await run(variant, tok);
      t.push(performance.now() - t0);
    }
    return { ms: median(t), merged: stats ? (stats.mergeDispatches - before) / t.length : 1 };
  };
  const changing = await timed('decode', spread);
  const skipMs = (await timed('decode', new Array(reps + 1).fill(spread[reps]))).ms;
  const unfusedMs = (await timed('decode_unfused', spread)).ms;
  // changing = skip + rate·(merge − skip)
  const mergeMs = changing.merged > 0 ? skipMs + (changing.ms - skipMs) / changing.merged : changing.ms;
  const crossoverF = mergeMs > skipMs ? (unfusedMs - skipMs) / (mergeMs - skipMs) : (unfusedMs >= skipMs ? Infinity : -Infinity);
  return { strategy: crossoverF >= 1 ? 'switch' : 'unfused', mergeMs, skipMs, unfusedMs, crossoverF, mergedShare: changing.merged };
}
