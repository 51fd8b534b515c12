// nnjit-web: run a compiled nnjit bundle in the browser.
//   const session = await Session.create('/models/mobilenet/');
//   const { logits } = await session.run({ input: new Float32Array(3 * 224 * 224) });
//   Session.create(url, { backend: 'auto' }) runs on WebGPU where the browser has an adapter.
import { BackendError, BundleError, InputError, NnjitError, reviveError } from './errors.js';
import { DTYPES, numel } from './dtypes.js';
import { prepareFeeds } from './feeds.js';
import { SharedIo } from './shared_io.js';
import { StringTable, decodeStrings, takePassthrough } from './values.js';

export { NnjitError, BundleError, InputError, BackendError };

/** Talks to the session's own Web Worker; answers are matched to requests by id (a GPU run may be overtaken). */
class WorkerChannel {
  constructor(onEvent) {
    this.pending = new Map();
    this.nextId = 1;
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'nnjit' });
    this.worker.onmessage = ({ data }) => {
      if (data.event) {
        onEvent(data.event, data.data);
        return;
      }
      const p = this.pending.get(data.id);
      this.pending.delete(data.id);
      if (data.ok) p.resolve(data.result);
      else p.reject(reviveError(data.error));
    };
    // An 'error' event means the worker itself died (script failed to load, out of memory): every
    // request in flight is lost, and so is the session.
    this.worker.onerror = (ev) => {
      ev.preventDefault();
      this.close(new BackendError(`the nnjit worker failed: ${ev.message || 'its script could not be loaded'}`));
    };
    this.worker.onmessageerror = () => this.close(new BackendError('the nnjit worker sent a message that could not be received'));
  }

  call(type, args, transfer = []) {
    if (!this.worker) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, type, args }, transfer);
    });
  }

  close(err = new BackendError('the session was released')) {
    this.worker?.terminate();
    this.worker = null;
    this.closedError = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/** The {worker: false} fallback: same engine on the page's own thread (for comparisons only). */
class DirectChannel {
  constructor(onEvent) {
    this.onEvent = onEvent;
  }

  async call(type, args) {
    if (this.closed) throw new BackendError('the session was released');
    if (type === 'create') {
      const { createEngine } = await import('./engine.js');
      this.engine = await createEngine(args.url, args.options, this.onEvent);
      return this.engine.info;
    }
    if (type === 'tuned') return this.engine.tuned();
    if (type === 'generate') return this.engine.generate(args.prompt, args.options);
    if (type === 'profile') return this.engine.profile(args.feeds, args.runs, args.options);
    if (type === 'debugLoseDevice') return this.engine.debugLoseDevice(args);
    return this.engine.run(args.feeds);
  }

  close() {
    this.closed = true;
    this.engine?.release();
    this.engine = null;
  }
}

export class Session {
  #channel;
  #info;

  #onProgress;
  #io = null;

  constructor(channel, info, onProgress = null) {
    this.#channel = channel;
    this.#info = info;
    this.#onProgress = onProgress;
    /**
     * Stats of the last run: {computeMs (kernels only, where they ran), ranIn (the global scope's type),
     * backend, via ('message': the worker's reply; 'flag': the page thread woke early and saw it done)}.
     */
    this.lastRunStats = null;
  }

  /**
   * Load, verify and compile a bundle. `url`: the bundle directory or its manifest.json.
   * options: backend 'wasm' (default) | 'webgpu' | 'auto', worker (default true), relaxedSimd
   * (undefined = when supported; it picks the wasm kernels, which a WebGPU session keeps for its fallback),
   * tune: {budgetMs (default 30000; 0 = off), onProgress({done, total, bestSoFar: {ms, defaultMs}, elapsedMs})}
   * or false. Tuning starts in the background at once; see tuned(). threads: wasm threads (default
   * navigator.hardwareConcurrency, and never more; 1 with a console warning where the page is not
   * cross-origin isolated).
   * moe: a parameter committee for MoE bundles (docs/moe.md): {residentExperts | budgetBytes, policy
   * ('swap' | 'substitute' | 'skip'), plan (the object `nnjit moe-plan` wrote)}; wasm backend only.
   * wakeEarly (default true): in a worker session on a cross-origin isolated page whose threads leave
   * a core free, runs of 2 ms and more end with the page's main thread briefly watching for the result
   * instead of sleeping until the worker's message wakes it (~0.3 ms sooner; it spins at most 1.5 ms
   * or a quarter of the run).
   */
  static async create(url, { backend = 'wasm', worker = true, relaxedSimd, tune = {}, threads, moe, wakeEarly = true } = {}) {
    // Resolve here: inside the worker, relative URLs would resolve against the worker script.
    const absolute = new URL(url, globalThis.location?.href).href;
    let session = null;
    const early = [];
    const onEvent = (event, data) => (session ? session.#event(event, data) : early.push([event, data]));
    const channel = worker ? new WorkerChannel(onEvent) : new DirectChannel(onEvent);
    const { onProgress = null, ...tuneOptions } = tune === false ? { budgetMs: 0 } : tune;
    try {
      const info = await channel.call('create', { url: absolute, options: { backend, relaxedSimd, threads, tune: tuneOptions, moe } });
      session = new Session(channel, { ...info, worker: Boolean(worker) }, onProgress);
      for (const [event, data] of early) session.#event(event, data);
      if (worker) session.#io = await SharedIo.create(channel, session.#info, wakeEarly);
      return session;
    } catch (err) {
      channel.close();
      throw err;
    }
  }

  #streams = new Map();
  #nextStream = 1;

  #event(event, data) {
    if (event === 'token') this.#streams.get(data.stream)?.(data.token);
    if (event === 'progress') this.#onProgress?.(data);
    if (event === 'tuned') this.#info.tuning = data;
  }

  /**
   * Resolves when on-device tuning has finished (budget spent, search complete, or nothing to
   * tune) to {status, source ('tuned' | 'cache' | 'cache, resumed'), groups, candidates, result:
   * {complete, elapsedMs, measured, total, defaultMs, bestMs, winners}, cacheDropped}. Runs do not
   * wait for it: they use the best kernels found so far.
   */
  async tuned() {
    this.#info.tuning = await this.#channel.call('tuned', {});
    return structuredClone(this.#info.tuning);
  }

  /** [{name, dtype, shape}] of the model's inputs. */
  get inputs() {
    return structuredClone(this.#info.inputs);
  }

  get outputs() {
    return structuredClone(this.#info.outputs);
  }

  /**
   * {backend (what runs now), requestedBackend, fallbackReason, gpu, relaxedSimd, worker, ranIn, model,
   * kernelFiles, timings: {fetchMs, compileMs}}. backend and fallbackReason are as of the last reply
   * from the session: a WebGPU session that lost its device reports 'wasm' from the run that fell back.
   */
  get info() {
    return structuredClone(this.#info);
  }

  /**
   * The caller's output arrays (run's options.outputs: output name → typed array of the output's type
   * and element count), one per output in order, null where none was given; InputError for anything else.
   */
  #outputArrays(given) {
    const outs = this.#info.outputs;
    if (given == null) return outs.map(() => null);
    if (typeof given !== 'object') throw new InputError(`options.outputs: expected an object (output name → typed array), got ${typeof given}`);
    for (const name of Object.keys(given)) {
      if (!outs.some((o) => o.name === name)) throw new InputError(`options.outputs: the model has no output "${name}" (outputs: ${outs.map((o) => o.name).join(', ')})`);
    }
    return outs.map((o) => {
      const a = given[o.name];
      if (a == null) return null;
      const Arr = o.encoding ? null : DTYPES[o.dtype]?.Array;
      const n = numel(o.shape);
      if (!Arr || !(a instanceof Arr) || a.length !== n) {
        const got = ArrayBuffer.isView(a) ? `${a.constructor.name} of ${a.length}` : typeof a;
        throw new InputError(`options.outputs.${o.name}: expected ${Arr ? `a ${Arr.name} of ${n} elements` : `nothing (a ${o.encoding ?? o.dtype} output is always returned fresh)`}, got ${got}`);
      }
      return a;
    });
  }

  async #runShared(feeds, given) {
    const r = await this.#io.run(feeds, given, this.lastRunStats);
    if (r.state) Object.assign(this.#info, r.state);
    this.lastRunStats = r.stats;
    const result = {};
    this.#info.outputs.forEach((o, i) => {
      result[o.name] = { data: r.outputs[i], dims: [...o.shape], dtype: o.dtype };
    });
    return this.#finish(result, r.ready, r.passed);
  }

  /**
   * feeds: input name → typed array or {data, dims}. Resolves to output name → {data, dims, dtype}.
   * options.outputs: output name → a typed array of the output's type and size to write it into (its
   * `data` is then that array): a stream of runs can reuse its arrays instead of getting fresh ones,
   * whose first touch costs 0.6-0.8 ms per MiB here.
   */
  async run(feeds, options = {}) {
    const given = this.#outputArrays(options?.outputs);
    if (this.#io) return this.#runShared(feeds, given);
    const { rest, outputs: passed } = takePassthrough(this.#info.passthrough, feeds);
    const buffers = prepareFeeds(rest, this.#info.inputs, this.#info.strings);
    const { outputs, stats, state } = await this.#channel.call('run', { feeds: buffers }, Object.values(buffers));
    Object.assign(this.#info, state);
    this.lastRunStats = stats;
    const result = {};
    this.#info.outputs.forEach((o, i) => {
      const data = new DTYPES[o.dtype].Array(outputs[o.name]);
      if (given[i]) given[i].set(data);
      result[o.name] = { data: given[i] ?? data, dims: [...o.shape], dtype: o.dtype };
    });
    return this.#finish(result, buffers, passed);
  }

  /** String outputs read through this run's table (its feeds', else the model's constants), plus the passthrough outputs. */
  #finish(result, ready, passed) {
    for (const o of this.#info.outputs) {
      if (o.encoding !== 'string') continue;
      const table = ready.table ?? new StringTable(this.#info.strings);
      result[o.name] = { data: decodeStrings(result[o.name].data, table), dims: [...o.shape], dtype: 'string' };
    }
    return Object.assign(result, passed);
  }

  /**
   * Decoder bundles (docs/decoders.md): generate tokens after `promptIds` (token ids from the model's
   * tokenizer), yielding each new id as soon as it is picked. options: maxNewTokens (32), temperature
   * (0 = greedy), topK (0 = all), topP (1), seed (0), stop (token ids; default the model's end of
   * text), returnLogits. When the iterator ends, `lastGenerateStats` holds {tokens, promptTokens,
   * prefillMs, decodeMs, prefillTokensPerS, decodeTokensPerS, logits?}. Bad prompts (too long for the
   * max context, ids outside the vocabulary, non-integers) reject with InputError.
   */
  async *generate(promptIds, options = {}) {
    const stream = this.#nextStream++;
    const queue = [];
    let wake = null;
    let settled = null;
    this.#streams.set(stream, (token) => { queue.push(token); wake?.(); });
    const prompt = ArrayBuffer.isView(promptIds) || Array.isArray(promptIds) ? Array.from(promptIds, (v) => (typeof v === 'bigint' ? Number(v) : v)) : promptIds;
    const reply = this.#channel.call('generate', { prompt, options: { ...options, stream } }).then(
      (r) => { settled = { r }; wake?.(); },
      (e) => { settled = { e }; wake?.(); },
    );
    try {
      for (;;) {
        if (queue.length) {
          yield queue.shift();
          continue;
        }
        if (settled) break;
        await new Promise((r) => { wake = r; });
        wake = null;
      }
      await reply;
      if (settled.e) throw settled.e;
      Object.assign(this.#info, settled.r.state);
      this.lastGenerateStats = settled.r.result;
    } finally {
      this.#streams.delete(stream);
    }
  }

  /**
   * Time each step of the plan on `feeds` (`runs` repetitions, after the caller's warm-up runs).
   * Resolves to [{step, op, node, family, kernel, ms}] in execution order, ms = median per step.
   * On webgpu, `timer` is 'timestamp' (GPU timestamps, the default where the adapter has them) or
   * 'submit' (each step its own submit, timed on the CPU until the GPU is done). `plan: 'decode'`
   * profiles a decoder's one-token plan (wasm), with feeds for its inputs.
   */
  async profile(feeds, { runs = 10, timer, plan = 'main' } = {}) {
    const inputs = plan === 'decode' ? this.#info.decodeInputs : this.#info.inputs;
    if (!inputs) throw new BackendError(`the bundle has no "${plan}" plan`);
    const buffers = prepareFeeds(feeds, inputs);
    const { profile, state } = await this.#channel.call('profile', { feeds: buffers, runs, options: { timer, plan } }, Object.values(buffers));
    Object.assign(this.#info, state);
    return profile;
  }

  /**
   * For tests of the WebGPU fallback only: destroy the session's GPU device now, or with
   * {afterNextSubmit: true} while the next run is on the GPU; {byValidationError: true} destroys a
   * buffer instead, so the next run fails GPU validation. BackendError on a wasm session.
   */
  async debugLoseDeviceForTesting({ afterNextSubmit = false, byValidationError = false } = {}) {
    Object.assign(this.#info, await this.#channel.call('debugLoseDevice', { afterNextSubmit, byValidationError }));
  }

  /** Stop the worker and free the memory. Later calls to run() reject with BackendError. */
  async release() {
    this.#channel.close();
  }
}
