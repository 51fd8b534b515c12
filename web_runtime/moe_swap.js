// Filling a compacted bundle's expert slots, its slot tables, and the swap policy's host step
// (docs/moe.md; the same scheduler as compiler/moe_runtime.py): before each moe kernel, read the
// routed expert ids, make them resident by evicting the least recently used slot no token in
// flight needs, and run the batch in runs of tokens whose experts are resident (`run_tokens`).

function tableOf(state, layer) {
  const slotOf = new Map(layer.slotExpert.map((e, s) => [e, s]));
  const table = new Int32Array(layer.E).fill(-1);
  for (let e = 0; e < layer.E; e++) {
    if (slotOf.has(e)) table[e] = slotOf.get(e);
    else if (state.policy === 'substitute') table[e] = slotOf.get(layer.similar[e].find((c) => slotOf.has(c)));
  }
  return table;
}

/** After WasmBackend.create on the bundle prepareMoe() returned: slots, tables, and the swap host steps. */
export async function attachMoe(backend, state) {
  const { memory } = backend;
  const configs = new Map(backend.manifest.kernels.map((k) => [k.id, k.config]));
  for (const layer of state.layers) {
    const call = backend.calls.find((c) => c.step.id === layer.step.id);
    const [, , , tableAddr, storeAddr] = call.args;
    const n = layer.slotBytes / 4;
    const writeSlot = (slot, e) => new Float32Array(memory.buffer, storeAddr + slot * layer.slotBytes, n).set(layer.store.subarray(e * n, (e + 1) * n));
    Object.assign(layer, {
      slotExpert: [...layer.committee], lastUse: new Array(state.R).fill(0), writeSlot,
      writeTable: () => new Int32Array(memory.buffer, tableAddr, layer.E).set(layer.table),
      config: configs.get(layer.step.kernel),
    });
    layer.committee.forEach((e, s) => writeSlot(s, e));
    layer.table = tableOf(state, layer);
    layer.writeTable();
    if (state.policy !== 'swap') continue;
    const id = layer.step.kernel;
    const built = backend.fns.get(`${id}:${backend.relaxed && Boolean(backend.kernelInfo.get(id)?.relaxed)}`);
    const instance = await WebAssembly.instantiate(built.module, { env: { memory } });
    layer.runTokens = instance.exports.run_tokens;
    call.host = (c) => swapRun(state, layer, c.args, memory);
  }
}

function idsOf(layer, addr, memory) {
  const { T, k, idx_bytes: ib } = layer.config;
  const raw = ib === 8 ? new BigInt64Array(memory.buffer, addr, T * k) : new Int32Array(memory.buffer, addr, T * k);
  return Array.from({ length: T }, (_, t) => Array.from(raw.subarray(t * k, (t + 1) * k), Number));
}

function swapRun(state, layer, args, memory) {
  const ids = idsOf(layer, args[1], memory);
  const flush = (t0, t1) => {
    if (t1 <= t0) return;
    layer.writeTable();
    layer.runTokens(...args, t0, t1);
  };
  let start = 0;
  let pinned = new Set();
  for (let t = 0; t < ids.length; t++) {
    const need = [...new Set(ids[t])].filter((e) => e >= 0 && e < layer.E);
    const missing = need.filter((e) => layer.table[e] < 0);
    const held = new Set(need.filter((e) => layer.table[e] >= 0).map((e) => layer.table[e]));
    const free = () => Array.from({ length: state.R }, (_, s) => s).filter((s) => !pinned.has(s) && !held.has(s));
    if (free().length < missing.length) {
      flush(start, t); // the tokens in flight keep their slots until they have run
      start = t;
      pinned = new Set();
    }
    for (const e of missing) {
      const victim = free().reduce((a, b) => (layer.lastUse[b] < layer.lastUse[a] ? b : a));
      layer.table[layer.slotExpert[victim]] = -1;
      layer.writeSlot(victim, e);
      layer.slotExpert[victim] = e;
      layer.table[e] = victim;
      held.add(victim);
      state.swaps += 1;
      state.swapBytes += layer.slotBytes;
    }
    for (const e of need) {
      state.clock += 1;
      layer.lastUse[layer.table[e]] = state.clock;
      pinned.add(layer.table[e]);
    }
  }
  flush(start, ids.length);
}
