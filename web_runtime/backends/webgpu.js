// The WebGPU backend. Two GPU buffers stand in for the WASM backend's linear memory: the weights
// (uploaded once) and the arena, at the offsets the compiler planned; every kernel binding is a
// 256-byte aligned range of one of them (docs/kernels_wgsl.md), so pipelines and bind groups are
// made once. A run writes the inputs, records every dispatch and the output copies in one command
// buffer, submits once and maps one staging buffer.
import { BackendError, BundleError, InputError } from '../errors.js';
import { createPipelines } from './webgpu_device.js';
import { bufferSizes, inChunk, pad4, planSteps } from './webgpu_layout.js';

export { requestGpu } from './webgpu_device.js';

/** The GPU stopped being usable (device lost, a GPU error in our commands): the engine falls back to wasm. */
export class GpuFailure extends BackendError {
  constructor(reason) {
    super(`WebGPU failed: ${reason}`);
    this.reason = reason;
  }
}

const ERROR_FILTERS = ['validation', 'out-of-memory', 'internal'];
const MAX_QUERIES = 4096; // per GPUQuerySet, by the spec

export class WebGPUBackend {
  /** `bundle` is what loadBundle() returned, `gpu` what requestGpu() did; the device is the backend's from now on. */
  static async create({ manifest, tensors, plans, kernels, weights }, { device, info }, fetchKernel = null) {
    const { limits } = device;
    const sizes = bufferSizes({ manifest, tensors }, weights.byteLength, limits);
    const t0 = performance.now();
    const pipelines = await createPipelines(device, kernels.webgpu);
    const compileMs = performance.now() - t0;
    const { steps, scratchBytes: mainScratch } = planSteps({ manifest, tensors }, plans.webgpu, pipelines, limits);
    // A decoder's one-token plan (docs/decoders.md) over the same buffers.
    const dec = manifest.decoder?.decode;
    const decodeSteps = dec ? planSteps({ manifest, tensors }, plans['webgpu:decode'], pipelines, limits, dec.steps) : null;
    // A LoRA-Switch bundle's other one-token strategy (docs/lora_switch.md), same buffers again.
    const unf = manifest.decoder?.decode_unfused;
    const unfusedSteps = unf ? planSteps({ manifest, tensors }, plans['webgpu:decode_unfused'], pipelines, limits, unf.steps) : null;
    const scratchBytes = Math.max(mainScratch, decodeSteps?.scratchBytes ?? 0, unfusedSteps?.scratchBytes ?? 0);

    // An output folded to a constant lives in the weights buffer.
    const ioOf = (v) => ({ name: v.name, offset: tensors.get(v.tensor).offset, bytes: tensors.get(v.tensor).bytes, storage: tensors.get(v.tensor).storage });
    const stagedOf = (list) => {
      let at = 0;
      return {
        outputs: list.map((v) => {
          const o = { ...ioOf(v), staged: at };
          at += pad4(o.bytes);
          return o;
        }),
        bytes: at,
      };
    };
    const inputs = manifest.inputs.map(ioOf);
    const { outputs, bytes: mainStaged } = stagedOf(manifest.outputs);
    const decOut = dec ? stagedOf(dec.outputs) : null;
    const unfOut = unf ? stagedOf(unf.outputs) : null;
    const staged = Math.max(mainStaged, decOut?.bytes ?? 0, unfOut?.bytes ?? 0);

    // LoRA-Switch (docs/lora_switch.md): a gate step writes its merge step's indirect dispatch arguments
    // (0 workgroups when the set did not change) to a small buffer of its own: a buffer read as INDIRECT
    // may not be writable storage in that dispatch, and the merge writes the arena.
    const indirect = new Set();
    const wireIndirect = (list, variant) => list?.forEach((s, i) => {
      if (s.step.family === 'lora_switch') {
        const gate = list[i - 1];
        if (gate?.step.family !== 'lora_switch_gate') {
          throw new BundleError(`manifest.json: step ${s.step.id} (lora_switch) must follow its lora_switch_gate step, got ${gate ? gate.step.family : 'nothing'} before it`);
        }
        s.indirect = gate.binds[2].storage;
      }
      if (s.step.family === 'lora_switch_gate') {
        const key = `go:${variant}:${s.step.id}`;
        indirect.add(key);
        s.binds[2] = { storage: key, offset: 0, size: 32 };
      }
    });
    wireIndirect(steps, 'main');
    wireIndirect(decodeSteps?.steps, 'decode');
    wireIndirect(unfusedSteps?.steps, 'decode_unfused');

    // Allocation failures and invalid bind groups surface here, with sizes, rather than as a first run that falls back.
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    const U = GPUBufferUsage;
    const buffers = {};
    let calls;
    let decodeCalls = null;
    let unfusedCalls = null;
    let thrown = null;
    try {
      // Weights above the adapter's maxBufferSize go in several buffers, each holding whole tensors.
      sizes.chunks.forEach(({ start, end }, k) => {
        const b = device.createBuffer({ label: `weights ${k}`, size: pad4(end - start), usage: U.STORAGE | U.COPY_SRC, mappedAtCreation: true });
        new Uint8Array(b.getMappedRange()).set(new Uint8Array(weights, start, Math.min(end, weights.byteLength) - start));
        b.unmap();
        buffers[`weight${k}`] = b;
      });
      const rebase = (x) => (x.storage === 'weight' ? Object.assign(x, inChunk(sizes.chunks, x.offset)) : x);
      for (const st of [...steps, ...(decodeSteps?.steps ?? []), ...(unfusedSteps?.steps ?? [])]) {
        st.binds.forEach(rebase);
        st.copies.forEach(rebase);
      }
      [...outputs, ...(decOut?.outputs ?? []), ...(unfOut?.outputs ?? [])].forEach(rebase);
      buffers.arena = device.createBuffer({ label: 'arena', size: sizes.arena, usage: U.STORAGE | U.COPY_SRC | U.COPY_DST });
      if (scratchBytes) buffers.scratch = device.createBuffer({ label: 'scratch', size: scratchBytes, usage: U.STORAGE | U.COPY_DST });
      buffers.staging = device.createBuffer({ label: 'outputs', size: Math.max(staged, 4), usage: U.MAP_READ | U.COPY_DST });
      for (const key of indirect) buffers[key] = device.createBuffer({ label: key, size: 32, usage: U.STORAGE | U.INDIRECT | U.COPY_DST });
      const bind = (s) => {
        const { pipeline, layout } = pipelines.get(s.kernel);
        const entries = s.binds.map((b, j) => ({ binding: j, resource: { buffer: buffers[b.storage], offset: b.offset, size: b.size } }));
        return { ...s, pipeline, bindGroup: device.createBindGroup({ layout, entries, label: `step ${s.step.id}` }) };
      };
      calls = steps.map(bind);
      if (decodeSteps) decodeCalls = decodeSteps.steps.map(bind);
      if (unfusedSteps) unfusedCalls = unfusedSteps.steps.map(bind);
    } catch (e) {
      thrown = e; // createBuffer throws RangeError for sizes it cannot map at creation
    }
    const oom = await device.popErrorScope();
    const invalid = await device.popErrorScope();
    const failed = thrown ?? oom ?? invalid;
    if (failed) {
      throw new BackendError(`cannot set up the GPU buffers (weights ${sizes.weight} bytes in ${sizes.chunks.length}, arena ${sizes.arena} bytes, `
        + `scratch ${scratchBytes} bytes) and bind groups: ${failed.message}`);
    }
    const backend = new WebGPUBackend(device, info, buffers, calls, inputs, outputs, compileMs);
    for (const c of [...calls, ...(decodeCalls ?? []), ...(unfusedCalls ?? [])]) backend.#setGrid(c);
    Object.assign(backend, { manifest, fetchKernel, pipelines });
    if (dec) backend.variants.decode = { calls: decodeCalls, inputs: dec.inputs.map(ioOf), outputs: decOut.outputs };
    if (unf) backend.variants.decode_unfused = { calls: unfusedCalls, inputs: unf.inputs.map(ioOf), outputs: unfOut.outputs };
    return backend;
  }

  constructor(device, info, buffers, calls, inputs, outputs, compileMs) {
    Object.assign(this, { device, info, buffers, calls, inputs, outputs, compileMs });
    /** Other plans over the same buffers: a decoder's 'decode'. The main plan is the prefill. */
    this.variants = { main: { calls, inputs, outputs } };
    /** Runs per plan ('main', 'decode', ...): LoRA-Switch counts decode runs against merges (lora_switch.js). */
    this.runs = {};
    /** Why the GPU is unusable (device lost, uncaptured error), or null. */
    this.failure = null;
    this.released = false;
    this.loseAfterSubmit = null;
    device.lost.then((lost) => this.#lost(lost));
    device.onuncapturederror = (ev) => {
      this.failure ??= `uncaptured GPU error: ${ev.error.message}`;
    };
  }

  #lost(lost) {
    if (!this.released) this.failure ??= `the GPU device was lost (${lost.reason}${lost.message ? `: ${lost.message}` : ''})`;
  }

  /** `feeds`: input name → ArrayBuffer of exactly the tensor's bytes. Resolves to output name → ArrayBuffer. */
  async run(feeds, sinks = null, variant = 'main') {
    const v = this.variants[variant];
    if (!v) throw new BackendError(`the bundle has no "${variant}" plan`);
    this.#checkFeeds(feeds, v.inputs);
    this.runs[variant] = (this.runs[variant] ?? 0) + 1;
    return this.#guarded(async () => {
      this.#upload(feeds, v.inputs);
      const enc = this.device.createCommandEncoder();
      this.#encode(enc, 0, v.calls.length, undefined, v.calls);
      for (const o of v.outputs) enc.copyBufferToBuffer(this.buffers[o.storage], o.offset, this.buffers.staging, o.staged, pad4(o.bytes));
      return this.#readBack(enc, this.buffers.staging, (mapped) => {
        const out = {};
        for (const o of v.outputs) {
          if (sinks) sinks[o.name].set(new Uint8Array(mapped, o.staged, o.bytes));
          else out[o.name] = mapped.slice(o.staged, o.staged + o.bytes);
        }
        return out;
      });
    });
  }

  /**
   * Median ms per step over `runs` runs. timer 'timestamp' (the default where the adapter has
   * timestamp-query) reads GPU timestamps around each dispatch, all steps of a run in one submit;
   * 'submit' times each dispatch as its own submit until onSubmittedWorkDone (includes submit overhead).
   */
  async profile(feeds, runs, { timer } = {}) {
    const useTimestamps = (timer ?? (this.info.timestampQuery ? 'timestamp' : 'submit')) === 'timestamp';
    if (useTimestamps && !this.info.timestampQuery) throw new BackendError('profile timer "timestamp": this adapter has no timestamp-query');
    this.#checkFeeds(feeds);
    const times = await this.#guarded(() => {
      this.#upload(feeds);
      return useTimestamps ? this.#timestamps(runs) : this.#submitTimes(runs);
    });
    const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
    return this.calls.map(({ step, kernel }, i) => ({
      step: step.id, op: step.op, node: step.node ?? '', family: step.family ?? '', kernel, ms: median(times[i]),
    }));
  }

  async #timestamps(runs) {
    const n = this.calls.length;
    const U = GPUBufferUsage;
    const sets = Array.from({ length: Math.ceil((2 * n) / MAX_QUERIES) }, (_, i) => this.device.createQuerySet({
      type: 'timestamp', count: Math.min(MAX_QUERIES, 2 * n - i * MAX_QUERIES),
    }));
    const resolve = this.device.createBuffer({ size: 16 * n, usage: U.QUERY_RESOLVE | U.COPY_SRC });
    const read = this.device.createBuffer({ size: 16 * n, usage: U.MAP_READ | U.COPY_DST });
    const times = this.calls.map(() => []);
    try {
      for (let r = 0; r < runs; r++) {
        const enc = this.device.createCommandEncoder();
        this.#encode(enc, 0, n, (i) => {
          const q = 2 * i;
          return { querySet: sets[Math.floor(q / MAX_QUERIES)], beginningOfPassWriteIndex: q % MAX_QUERIES, endOfPassWriteIndex: (q % MAX_QUERIES) + 1 };
        });
        sets.forEach((s, i) => enc.resolveQuerySet(s, 0, s.count, resolve, i * MAX_QUERIES * 8));
        enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * n);
        const ns = await this.#readBack(enc, read, (mapped) => new BigInt64Array(mapped.slice(0)));
        // Timestamps may be quantized (Chromium: 100 µs without developer features): a step can read 0.
        for (let i = 0; i < n; i++) times[i].push(Math.max(0, Number(ns[2 * i + 1] - ns[2 * i])) / 1e6);
      }
    } finally {
      sets.forEach((s) => s.destroy());
      resolve.destroy();
      read.destroy();
    }
    return times;
  }

  async #submitTimes(runs) {
    const times = this.calls.map(() => []);
    for (let r = 0; r < runs; r++) {
      for (let i = 0; i < this.calls.length; i++) {
        const enc = this.device.createCommandEncoder();
        this.#encode(enc, i, i + 1);
        const t0 = performance.now();
        this.device.queue.submit([enc.finish()]);
        await this.device.queue.onSubmittedWorkDone();
        times[i].push(performance.now() - t0);
        if (this.failure) throw new GpuFailure(this.failure);
      }
    }
    return times;
  }

  /**
   * The tuner's view (tuner.js): steps with the same webgpu candidate list form one group, the
   * kernel the plan runs first; a candidate is a kernel id.
   */
  tuningGroups() {
    const byKey = new Map();
    this.calls.forEach((c, i) => {
      const ids = c.step.candidates?.webgpu ?? [];
      if (ids.length < 2) return;
      const key = ids.join(',');
      if (!byKey.has(key)) byKey.set(key, { key, candidates: [c.kernel, ...ids.filter((id) => id !== c.kernel)], steps: [] });
      byKey.get(key).steps.push(i);
    });
    return [...byKey.values()];
  }

  async #candidate(id) {
    if (!this.pipelines.has(id)) {
      if (!this.fetchKernel) throw new BackendError(`kernel ${id} is not loaded and this session cannot fetch candidates`);
      const made = await createPipelines(this.device, new Map([[id, await this.fetchKernel(id)]]));
      this.pipelines.set(id, made.get(id));
    }
    return this.pipelines.get(id);
  }

  /** The call `c` with candidate `id`'s pipeline, bind group and dispatch (same bindings: same family and args). */
  async #rebound(c, id) {
    const p = await this.#candidate(id);
    const was = this.pipelines.get(c.kernel);
    if (was && JSON.stringify(p.writable) !== JSON.stringify(was.writable)) {
      throw new BackendError(`candidate ${id} writes other bindings than ${c.kernel}`);
    }
    const entries = c.binds.map((b, j) => ({ binding: j, resource: { buffer: this.buffers[b.storage], offset: b.offset, size: b.size } }));
    const bindGroup = this.device.createBindGroup({ layout: p.layout, entries, label: `step ${c.step.id} ${id}` });
    return { ...c, kernel: id, pipeline: p.pipeline, bindGroup, dispatch: p.dispatch };
  }

  /** ms per dispatch of candidate `id` on the group's first step: R dispatches per submit until the GPU is done, median of 3. */
  async measure(group, id) {
    const c = await this.#rebound(this.calls[group.steps[0]], id);
    return this.#guarded(async () => {
      const once = async (reps) => {
        const enc = this.device.createCommandEncoder();
        for (const cp of c.copies) enc.copyBufferToBuffer(this.buffers[cp.storage], cp.offset, this.buffers.scratch, cp.to, cp.size);
        const pass = enc.beginComputePass();
        pass.setPipeline(c.pipeline);
        pass.setBindGroup(0, c.bindGroup);
        for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(...c.dispatch);
        pass.end();
        const t0 = performance.now();
        this.device.queue.submit([enc.finish()]);
        await this.device.queue.onSubmittedWorkDone();
        return (performance.now() - t0) / reps;
      };
      const first = await once(1); // also compiles the pipeline in drivers that defer it
      const reps = Math.max(1, Math.min(64, Math.ceil(4 / Math.max(first, 1e-3))));
      const samples = [await once(reps), await once(reps), await once(reps)].sort((a, b) => a - b);
      return samples[1];
    });
  }

  async apply(group, id) {
    for (const i of group.steps) {
      this.calls[i] = await this.#rebound(this.calls[i], id);
      this.#setGrid(this.calls[i]);
    }
  }

  /** An indirectly dispatched call's grid, where its gate step copies it from (words 4–6 of the buffer). */
  #setGrid(c) {
    if (c.indirect) this.device.queue.writeBuffer(this.buffers[c.indirect], 16, new Uint32Array(c.dispatch));
  }

  /** Write int32 `words` at `offset` of buffer `storage`, ahead of the next submit. */
  writeWords(storage, offset, words) {
    this.device.queue.writeBuffer(this.buffers[storage], offset, new Int32Array(words));
  }

  /** `count` int32 words at `offset` of buffer `storage` ('arena', ...), copied back now (counters, tests). */
  async readWords(storage, offset, count) {
    const size = pad4(count * 4);
    const read = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      return await this.#guarded(() => {
        const enc = this.device.createCommandEncoder();
        enc.copyBufferToBuffer(this.buffers[storage], offset, read, 0, size);
        return this.#readBack(enc, read, (mapped) => Array.from(new Int32Array(mapped.slice(0))));
      });
    } finally {
      read.destroy();
    }
  }

  /** Steps [from, to) into `enc`: one compute pass, split where scratch copies or per-step timestamps need it. */
  #encode(enc, from, to, timestampWrites, calls = this.calls) {
    let pass = null;
    for (let i = from; i < to; i++) {
      const c = calls[i];
      const tw = timestampWrites?.(i);
      if (c.copies.length || tw) {
        pass?.end();
        pass = null;
        for (const cp of c.copies) enc.copyBufferToBuffer(this.buffers[cp.storage], cp.offset, this.buffers.scratch, cp.to, cp.size);
      }
      pass ??= enc.beginComputePass(tw ? { timestampWrites: tw } : {});
      pass.setPipeline(c.pipeline);
      pass.setBindGroup(0, c.bindGroup);
      if (c.indirect) pass.dispatchWorkgroupsIndirect(this.buffers[c.indirect], 0);
      else pass.dispatchWorkgroups(...c.dispatch);
      if (tw) {
        pass.end();
        pass = null;
      }
    }
    pass?.end();
  }

  /** Submit `enc`, map `buffer` and return take(its contents); the buffer is unmapped again whatever happens. */
  async #readBack(enc, buffer, take) {
    this.device.queue.submit([enc.finish()]);
    if (this.loseAfterSubmit) {
      const lose = this.loseAfterSubmit;
      this.loseAfterSubmit = null;
      lose();
    }
    // A device destroyed while the map is pending does not always reject the map (Firefox, under load,
    // left it pending for good): the device's loss settles the read-back too, and the run falls back.
    const mapped = buffer.mapAsync(GPUMapMode.READ);
    mapped.catch(() => {});
    const lost = this.device.lost.then((info) => Promise.reject(new DOMException(`the GPU device was lost (${info.reason})`, 'AbortError')));
    lost.catch(() => {});
    await Promise.race([mapped, lost]);
    try {
      return take(buffer.getMappedRange());
    } finally {
      buffer.unmap();
    }
  }

  /** Run `work` inside error scopes: any GPU error, a lost device or a rejected GPU call becomes a GpuFailure. */
  async #guarded(work) {
    if (this.failure) throw new GpuFailure(this.failure);
    for (const f of ERROR_FILTERS) this.device.pushErrorScope(f);
    let result;
    let thrown = null;
    try {
      result = await work();
    } catch (e) {
      thrown = e;
    }
    const errors = [];
    for (const _ of ERROR_FILTERS) errors.push(await this.device.popErrorScope().catch(() => null));
    // A destroyed device rejects mapAsync before (or after) device.lost settles: look at it without waiting.
    const lost = await Promise.race([this.device.lost, undefined]);
    if (lost) this.#lost(lost);
    const gpuError = errors.find(Boolean);
    if (gpuError) this.failure ??= `${gpuError.constructor.name}: ${gpuError.message}`;
    if (thrown instanceof GpuFailure) throw thrown;
    // GPU calls fail with DOMExceptions (mapAsync on a lost device: AbortError/OperationError);
    // anything else is a bug here and must not hide behind a fallback.
    if (thrown && !(thrown instanceof DOMException)) throw thrown;
    if (thrown) this.failure ??= `${thrown.name}: ${thrown.message}`;
    if (this.failure) throw new GpuFailure(this.failure);
    return result;
  }

  #checkFeeds(feeds, inputs = this.inputs) {
    for (const { name, bytes } of inputs) {
      const buf = feeds[name];
      if (!buf || buf.byteLength !== bytes) {
        throw new InputError(`input "${name}": expected ${bytes} bytes, got ${buf ? buf.byteLength : 'nothing'}`);
      }
    }
  }

  #upload(feeds, inputs = this.inputs) {
    for (const { name, offset, bytes } of inputs) {
      const src = feeds[name] instanceof Uint8Array ? feeds[name] : new Uint8Array(feeds[name]);
      let data = src;
      if (bytes % 4) {
        // writeBuffer moves whole words; the planner keeps the bytes after a tensor free.
        data = new Uint8Array(pad4(bytes));
        data.set(src);
      }
      this.device.queue.writeBuffer(this.buffers.arena, offset, data);
    }
  }

  /**
   * Test hook (Session.debugLoseDeviceForTesting): destroy the device, or with byValidationError the
   * arena buffer (so the next run's commands fail validation); now, or right after the next submit.
   */
  loseDevice({ afterNextSubmit = false, byValidationError = false } = {}) {
    const lose = () => (byValidationError ? this.buffers.arena.destroy() : this.device.destroy());
    if (afterNextSubmit) this.loseAfterSubmit = lose;
    else lose();
  }

  /** What the session holds: its GPU buffers (weights, arena, scratch, staging, and any added later). */
  get memoryBytes() {
    return { wasm: null, gpu: Object.values(this.buffers).reduce((a, b) => a + (b?.size ?? 0), 0) };
  }

  destroy() {
    this.released = true;
    this.device.destroy();
  }
}
