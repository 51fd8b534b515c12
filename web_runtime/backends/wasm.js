// The WebAssembly SIMD backend: one linear memory holds weights and the arena at the addresses the
// compiler planned; each step calls its kernel's `run` with the byte addresses of its tensors.
import { BackendError, BundleError, InputError } from '../errors.js';
import { ThreadPool } from './wasm_threads.js';
import { withSharedMemoryImport } from './wasm_shared.js';

// (module (func (param v128) (result v128) local.get 0 local.get 0 local.get 0 f32x4.relaxed_madd)),
// assembled by wasmtime.wat2wasm. validate() accepts it exactly where relaxed SIMD is enabled.
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 123, 1, 123, 3, 2, 1, 0, 10, 13, 1, 11, 0, 32, 0, 32,
  0, 32, 0, 253, 133, 2, 11,
]);

export const relaxedSimdSupported = () => WebAssembly.validate(RELAXED_PROBE);

const PAGE_BYTES = 65536;
// Memory below this is the runtime's: the task counter of split calls lives at byte 0 (wasm_threads.js).
const RESERVED_BYTES = 64;

/** Median ms per call of `f`: repeated until one sample lasts ≥ 1 ms (the timer may be coarse), 7 samples. */
export function timeCall(f) {
  f();
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) f();
    if (performance.now() - t0 >= 1 || reps >= 4096) break;
    reps *= 4;
  }
  const samples = [];
  for (let k = 0; k < 7; k++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) f();
    samples.push((performance.now() - t0) / reps);
  }
  samples.sort((a, b) => a - b);
  return samples[3];
}

/** {fn: the entry, part: run_part where the kernel can split its work across threads, module}. */
async function instantiateKernel({ file, entry, bytes }, memory, sharedPages = 0) {
  let module;
  try {
    module = await WebAssembly.compile(sharedPages ? withSharedMemoryImport(bytes, sharedPages, file) : bytes);
  } catch (e) {
    throw new BundleError(`${file}: not a valid WebAssembly module (${e.message})`);
  }
  let instance;
  try {
    instance = await WebAssembly.instantiate(module, { env: { memory } });
  } catch (e) {
    throw new BundleError(`${file}: cannot link with the only import a kernel may have, env.memory (${e.message})`);
  }
  const fn = instance.exports[entry];
  if (typeof fn !== 'function') throw new BundleError(`${file}: exports no function "${entry}"`);
  const part = instance.exports.run_part;
  return { fn, part: typeof part === 'function' && part.length === fn.length + 2 ? part : null, module };
}

// A call is split across threads only when it has enough work to pay for waking them (~10–50 µs).
const SPLIT_MIN_MACS = 1 << 18;

/** The call's work in gemm multiply-adds (or their time's worth): what decides whether it splits. */
function macsOf(kernel) {
  const config = kernel?.config;
  // Softmax: its outer slices split. An element (max, exp, sum, divide over three passes) costs ~1.9 ns
  // here against ~0.04 ns per gemm multiply-add (Chromium: 0.37 ms for 1536 rows of 128), so it counts
  // as 32 multiply-adds (rounded down: a call splits from ~8k elements, ~16 µs of softmax).
  if (kernel?.family === 'softmax') return config.outer >= 2 ? config.outer * config.n * config.inner * 32 : 0;
  // Attention: its work grows with the run-time positions; a chunk's own causal triangle is the
  // floor, so prefill chunks split across threads and one-token decodes do not.
  if (config && Number.isInteger(config.Hkv)) return config.H * config.S * config.S * config.D;
  // Depthwise convolution: its planes split (one multiply-add per tap and output).
  if (config && Number.isInteger(config.KH) && Number.isInteger(config.OH) && !Number.isInteger(config.M)) {
    return config.N * config.C * config.OH * config.OW * config.KH * config.KW;
  }
  if (!config || !Number.isInteger(config.M)) return 0;
  return config.M * config.N * config.K * (config.batch ?? []).reduce((a, b) => a * b, 1);
}

export class WasmBackend {
  /**
   * `bundle` is what loadBundle() returned; `fetchKernel(id, relaxed)` → verified bytes of another
   * candidate kernel (what the tuner tries; only fetched when it does).
   */
  static async create({ manifest, tensors, plan, decodePlan = null, decodeUnfusedPlan = null, weights, kernels, fetchKernel = null, relaxed = false, threads = 1 }) {
    const { memory: mem } = manifest;
    const addrOf = (t) => (t.storage === 'weight' ? mem.weights_base : mem.arena_base) + t.offset;
    if (!(mem.weights_base >= RESERVED_BYTES && mem.arena_base >= RESERVED_BYTES)) {
      throw new BundleError(`manifest.json: memory.weights_base (${mem.weights_base}) and memory.arena_base (${mem.arena_base}) must leave bytes [0, ${RESERVED_BYTES}) to the runtime (threads count split work there)`);
    }
    if (mem.weights_base + weights.byteLength > mem.total_bytes) {
      throw new BundleError(`manifest.json: weights (${weights.byteLength} bytes at ${mem.weights_base}) exceed memory.total_bytes ${mem.total_bytes}`);
    }
    for (const t of tensors.values()) {
      // A kernel that addressed past the memory would trap on its first run; say which tensor is wrong now.
      const end = addrOf(t) + t.bytes;
      if (!(addrOf(t) >= 0 && end <= mem.total_bytes)) {
        throw new BundleError(`manifest.json: tensor ${t.id} (${t.name}) spans [${addrOf(t)}, ${end}) outside memory.total_bytes ${mem.total_bytes}`);
      }
    }

    const pages = Math.ceil(mem.total_bytes / PAGE_BYTES);
    const shared = threads > 1 ? pages : 0;
    let memory;
    try {
      memory = new WebAssembly.Memory(shared ? { initial: pages, maximum: pages, shared: true } : { initial: pages });
    } catch (e) {
      throw new BackendError(`cannot allocate ${mem.total_bytes} bytes of ${shared ? 'shared ' : ''}WebAssembly memory (${e.message})`);
    }
    new Uint8Array(memory.buffer, mem.weights_base, weights.byteLength).set(new Uint8Array(weights));

    const t0 = performance.now();
    const ids = [...kernels.keys()];
    const built = await Promise.all(ids.map((id) => instantiateKernel(kernels.get(id), memory, shared)));
    const calls = manifest.steps.map((step) => ({ args: step.args.map((a) => addrOf(tensors.get(a))), step }));
    const io = (list) => list.map((v) => ({ name: v.name, addr: addrOf(tensors.get(v.tensor)), bytes: tensors.get(v.tensor).bytes }));
    const backend = new WasmBackend(memory, calls, io(manifest.inputs), io(manifest.outputs));
    const dec = manifest.decoder?.decode;
    const decodeCalls = dec ? dec.steps.map((step) => ({ args: step.args.map((a) => addrOf(tensors.get(a))), step })) : [];
    if (dec) backend.variants.decode = { calls: decodeCalls, inputs: io(dec.inputs), outputs: io(dec.outputs) };
    const unf = manifest.decoder?.decode_unfused; // LoRA-Switch's other strategy (lora_switch.js)
    const unfusedCalls = unf ? unf.steps.map((step) => ({ args: step.args.map((a) => addrOf(tensors.get(a))), step })) : [];
    if (unf) backend.variants.decode_unfused = { calls: unfusedCalls, inputs: io(unf.inputs), outputs: io(unf.outputs) };
    Object.assign(backend, { manifest, fetchKernel, relaxed, shared, kernelInfo: new Map(manifest.kernels.map((k) => [k.id, k])) });
    ids.forEach((id, i) => backend.fns.set(`${id}:${relaxed && Boolean(backend.kernelInfo.get(id)?.relaxed)}`, built[i]));
    try {
      if (threads > 1) backend.pool = await ThreadPool.create(memory, threads);
      const bindAll = async (list, kernelIds) => {
        for (let i = 0; i < list.length; i++) {
          const k = kernelIds[i];
          await backend.#bind(list[i], { kernel: k, relaxed: relaxed && Boolean(backend.kernelInfo.get(k)?.relaxed) });
        }
      };
      await bindAll(calls, plan);
      if (dec) await bindAll(decodeCalls, decodePlan ?? []);
      if (unf) await bindAll(unfusedCalls, decodeUnfusedPlan ?? []);
    } catch (e) {
      backend.destroy();
      throw e;
    }
    backend.compileMs = performance.now() - t0;
    return backend;
  }

  /** Point `call` at a candidate: its entry function, and its run_part on the pool where the call is worth splitting. */
  async #bind(call, candidate) {
    const built = await this.#built(candidate);
    const { step } = call;
    if (built.fn.length !== call.args.length) {
      throw new BundleError(`manifest.json: step ${step.id} passes ${call.args.length} arguments to kernel ${candidate.kernel}, which takes ${built.fn.length}`);
    }
    call.fn = built.fn;
    // ':plain' marks the tuner's pick of the plain build where the session would run the relaxed one.
    const plainPick = this.relaxed && !candidate.relaxed && Boolean(this.kernelInfo.get(candidate.kernel)?.relaxed);
    call.kernel = candidate.kernel + (plainPick ? ':plain' : '');
    call.slot = undefined;
    if (this.pool && built.part && macsOf(this.kernelInfo.get(candidate.kernel)) >= SPLIT_MIN_MACS) {
      call.part = built.part;
      call.slot = await this.pool.slotOf(built.module);
    }
  }

  constructor(memory, calls, inputs, outputs) {
    this.memory = memory;
    this.calls = calls;
    this.inputs = inputs;
    this.outputs = outputs;
    /** Other plans over the same memory: a decoder's 'decode' (one token). The main plan is the prefill. */
    this.variants = { main: { calls, inputs, outputs } };
    this.compileMs = 0;
    this.pool = null;
    /** Always null: only a GPU backend can fail under the session (see engine.js). */
    this.failure = null;
    /** 'kernel id:relaxed' → {fn, part, module} of each instantiated kernel (the plan's and the tuner's). */
    this.fns = new Map();
  }

  /**
   * The tuner's view (tuner.js): steps with the same candidate list form one group; a candidate is
   * {kernel, relaxed}. With relaxed SIMD on, each kernel that has a relaxed build is tried both ways
   * (fused multiply-add is not always the faster: it only saves instructions).
   */
  tuningGroups() {
    const byKey = new Map();
    const kernels = new Map(this.manifest.kernels.map((k) => [k.id, k]));
    this.manifest.steps.forEach((step, i) => {
      const ids = step.candidates?.wasm;
      if (!ids?.length) return;
      const key = ids.join(',');
      if (!byKey.has(key)) {
        const candidates = [];
        for (const id of ids) {
          const both = this.relaxed && kernels.get(id)?.relaxed;
          candidates.push({ kernel: id, relaxed: Boolean(both) });
          if (both) candidates.push({ kernel: id, relaxed: false });
        }
        // Candidate 0 must be what runs now: the default kernel in the session's variant.
        byKey.set(key, { key, candidates, steps: [] });
      }
      byKey.get(key).steps.push(i);
    });
    return [...byKey.values()];
  }

  async #built({ kernel, relaxed }) {
    const key = `${kernel}:${relaxed}`;
    if (!this.fns.has(key)) {
      if (!this.fetchKernel) throw new BackendError(`kernel ${kernel} is not loaded and this session cannot fetch candidates`);
      const { bytes, file, entry } = await this.fetchKernel(kernel, relaxed);
      this.fns.set(key, await instantiateKernel({ file, entry, bytes }, this.memory, this.shared));
    }
    return this.fns.get(key);
  }

  /** Median ms per call of `candidate` on the group's first step (split across threads as a run would), on whatever the arena holds. */
  async measure(group, candidate) {
    const call = { ...this.calls[group.steps[0]] };
    await this.#bind(call, candidate);
    return timeCall(() => this.#call(call));
  }

  async apply(group, candidate) {
    for (const i of group.steps) await this.#bind(this.calls[i], candidate);
  }

  #call(c) {
    if (c.host) c.host(c); // a host step that runs the kernel itself (moe_swap.js)
    else if (c.slot !== undefined) this.pool.run(c.slot, c.part, c.args);
    else c.fn(...c.args);
  }

  /** What the session holds: the wasm memory (weights, arena, scratch; shared by its threads). */
  get memoryBytes() {
    return { wasm: this.memory?.buffer.byteLength ?? 0, gpu: null };
  }

  destroy() {
    this.pool?.destroy();
    this.pool = null;
    this.memory = null;
  }

  /** `feeds`: input name → ArrayBuffer holding exactly the tensor's bytes. Returns output name → ArrayBuffer (copies). */
  run(feeds, sinks = null, variant = 'main') {
    const v = this.variants[variant];
    if (!v) throw new BackendError(`the bundle has no "${variant}" plan`);
    this.#write(feeds, v.inputs);
    const { calls } = v;
    let i = 0;
    try {
      for (; i < calls.length; i++) this.#call(calls[i]);
    } catch (e) {
      throw this.#stepError(i, e, calls);
    }
    const out = {};
    for (const { name, addr, bytes } of v.outputs) {
      const src = new Uint8Array(this.memory.buffer, addr, bytes);
      if (sinks) {
        sinks[name].set(src);
        continue;
      }
      // A copy into a plain ArrayBuffer: a shared memory's slice() would be shared too, and not transferable.
      out[name] = new ArrayBuffer(bytes);
      new Uint8Array(out[name]).set(src);
    }
    return out;
  }

  /** Time every step `runs` times on `feeds`; the median per step, in manifest order. */
  profile(feeds, runs, { plan = 'main' } = {}) {
    const v = this.variants[plan];
    if (!v) throw new BackendError(`the bundle has no "${plan}" plan`);
    this.#write(feeds, v.inputs);
    const { calls } = v;
    const times = calls.map(() => []);
    for (let r = 0; r < runs; r++) {
      for (let i = 0; i < calls.length; i++) {
        const t0 = performance.now();
        try {
          this.#call(calls[i]);
        } catch (e) {
          throw this.#stepError(i, e, calls);
        }
        times[i].push(performance.now() - t0);
      }
    }
    const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
    return calls.map(({ step, kernel, slot }, i) => ({
      step: step.id, op: step.op, node: step.node ?? '', family: step.family ?? '', kernel, ms: median(times[i]),
      threads: slot === undefined ? 1 : this.pool.threads,
    }));
  }

  #stepError(i, e, calls = this.calls) {
    const { step, kernel } = calls[i];
    return new BackendError(`step ${step.id} (${step.op} ${step.node ?? ''}, kernel ${kernel}) failed: ${e.message}`);
  }

  #write(feeds, inputs = this.inputs) {
    const heap = new Uint8Array(this.memory.buffer);
    for (const { name, addr, bytes } of inputs) {
      const buf = feeds[name];
      if (!buf || buf.byteLength !== bytes) {
        throw new InputError(`input "${name}": expected ${bytes} bytes, got ${buf ? buf.byteLength : 'nothing'}`);
      }
      heap.set(buf instanceof Uint8Array ? buf : new Uint8Array(buf), addr);
    }
  }
}
