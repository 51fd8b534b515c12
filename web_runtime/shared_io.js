// Worker sessions on cross-origin isolated pages: inputs and outputs move through SharedArrayBuffers
// the worker also holds (one copy each way per run, no transfer, no fresh buffer in the worker), and a
// shared done flag lets the page take a run's outputs before the worker's reply message wakes it.
import { DTYPES, numel, tensorBytes } from './dtypes.js';
import { prepareFeeds } from './feeds.js';
import { takePassthrough } from './values.js';

/**
 * Feeds that are already exactly the model's typed arrays (same names, array class and length, dims
 * if given), as they are: no copy. null when any is not, and prepareFeeds() checks and converts
 * (and names what is wrong). Bools always go through prepareFeeds(): kernels need exact 0/1 bytes.
 */
function exactFeeds(feeds, inputs) {
  if (!feeds || typeof feeds !== 'object' || Object.keys(feeds).length !== inputs.length) return null;
  const out = {};
  for (const { name, dtype, shape, encoding } of inputs) {
    if (encoding) return null;
    let v = feeds[name];
    if (v && !ArrayBuffer.isView(v) && typeof v === 'object' && 'data' in v) {
      if (v.dims !== undefined && !(Array.isArray(v.dims) && v.dims.length === shape.length && v.dims.every((d, i) => d === shape[i]))) return null;
      v = v.data;
    }
    const n = numel(shape);
    if (dtype === 'bool' || !DTYPES[dtype] || DTYPES[dtype].raw || !(v instanceof DTYPES[dtype].Array) || v.length !== n) return null;
    out[name] = v;
  }
  return out;
}

// Waking the page's main thread for the worker's reply costs ~0.3-0.4 ms after it slept through a
// run of a few ms (measured in Chromium on this 2-core VM: 0.38-0.46 ms over a 5 ms worker task, 0.12 ms
// with the page already awake), which is 5-10% of a 4 ms model. So for runs of at least WAKE_MIN_MS
// the page wakes itself WAKE_LEAD_MS before the last run's compute time is up and watches the
// shared done flag for a short while (at most a quarter of the run, and WAKE_MAX_SPIN_MS).
const WAKE_MIN_MS = 2;
const WAKE_LEAD_MS = 0.6;
const WAKE_MAX_SPIN_MS = 1.5;

/** The shared buffers of one session and its runs through them, one at a time. */
export class SharedIo {
  #channel;
  #info;
  #wakeEarly;
  #spareCore;

  /**
   * Set up the buffers with the worker behind `channel`, or null where the page cannot share memory.
   * `info` is the session's live info (its inputs, outputs, threads; replies update it).
   */
  static async create(channel, info, wakeEarly) {
    if (!globalThis.crossOriginIsolated || typeof SharedArrayBuffer !== 'function') return null;
    const layout = (list) => {
      let offset = 0;
      const out = list.map((v) => {
        const bytes = tensorBytes(v.dtype, numel(v.shape));
        const entry = { name: v.name, offset, bytes };
        offset += Math.ceil(bytes / 8) * 8;
        return entry;
      });
      return { layout: out, buffer: new SharedArrayBuffer(Math.max(offset, 8)) };
    };
    // done: [the last run finished (its sequence number), -, its computeMs as a float64]
    const done = new SharedArrayBuffer(16);
    const io = new SharedIo(channel, info, wakeEarly);
    const views = ({ layout: list, buffer }) => list.map(({ offset, bytes }) => new Uint8Array(buffer, offset, bytes));
    const inputs = layout(info.inputs);
    const outputs = layout(info.outputs);
    Object.assign(io, {
      inputs, outputs, inputViews: views(inputs), outputViews: views(outputs), tail: Promise.resolve(),
      doneSeq: new Int32Array(done, 0, 1), doneMs: new Float64Array(done, 8, 1), seq: 0, lastMs: 0,
    });
    await channel.call('io', { inputs, outputs, done });
    return io;
  }

  constructor(channel, info, wakeEarly) {
    this.#channel = channel;
    this.#info = info;
    // Whether the session's threads leave a core for this thread: only then may it work (fault in the
    // outputs, spin on the done flag) while the worker computes, without slowing a kernel thread down
    // (measured: a 2-thread 512³ gemm on 2 cores went from 2.9 to 4.4+ ms).
    this.#spareCore = (info.threads ?? 1) < (globalThis.navigator?.hardwareConcurrency ?? 1);
    // MoE sessions report per-run swap counts that only the reply carries.
    this.#wakeEarly = wakeEarly && !info.moe && this.#spareCore;
  }

  /**
   * One run: `given` = the caller's output arrays (null each where none). Resolves to {outputs (one
   * array per output, in order), stats, state (null when the done flag answered first), ready (the
   * feeds as sent), passed (passthrough outputs)}. `lastStats`: the previous run's, for a flag answer.
   */
  async run(feeds, given, lastStats) {
    const prev = this.tail;
    let release;
    this.tail = new Promise((r) => { release = r; });
    await prev;
    try {
      const { rest, outputs: passed } = takePassthrough(this.#info.passthrough, feeds);
      const ready = exactFeeds(rest, this.#info.inputs) ?? prepareFeeds(rest, this.#info.inputs, this.#info.strings);
      this.inputs.layout.forEach(({ name }, i) => {
        const v = ready[name];
        this.inputViews[i].set(ArrayBuffer.isView(v) ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(v));
      });
      const seq = ++this.seq;
      const reply = this.#reply(seq, lastStats);
      // While the worker computes, allocate the output arrays and fault their pages in (fill): a
      // fresh buffer's first touch costs 0.6-0.8 ms per MiB here, which would otherwise follow the run.
      const alloc = () => this.outputs.layout.map(({ bytes }, i) => {
        if (given[i]) return given[i];
        const { Array: Arr, bytes: size } = DTYPES[this.#info.outputs[i].dtype];
        const a = new Arr(bytes / size);
        if (this.#spareCore) new Uint8Array(a.buffer).fill(0);
        return a;
      });
      let outs = this.#spareCore ? alloc() : null;
      const { stats, state } = await reply;
      outs ??= alloc();
      this.outputViews.forEach((src, i) => {
        new Uint8Array(outs[i].buffer, outs[i].byteOffset, src.length).set(src);
      });
      return { outputs: outs, stats: { via: 'message', ...stats }, state, ready, passed };
    } finally {
      release();
    }
  }

  /**
   * The worker's answer to shared run `seq`: its reply message, or — where wakeEarly applies — the done
   * flag seen by this thread woken just before the run should end (stats then carry the last reply's
   * fields with this run's computeMs; the reply, when it comes, still updates info).
   */
  #reply(seq, lastStats) {
    const t0 = performance.now();
    const message = this.#channel.call('runShared', { seq });
    // The last run's time from request to result as this thread saw it (the worker's own wake-up
    // included; a reply message adds this thread's, which the lead absorbs).
    const expected = this.lastMs;
    const seen = (r) => {
      this.lastMs = performance.now() - t0;
      return r;
    };
    if (!this.#wakeEarly || !(expected >= WAKE_MIN_MS)) return message.then(seen);
    return new Promise((resolve, reject) => {
      let settled = false;
      message.then((r) => {
        if (settled) Object.assign(this.#info, r.state);
        else resolve(seen(r));
        settled = true;
      }, (e) => {
        if (!settled) reject(e);
        settled = true;
      });
      setTimeout(() => {
        const until = performance.now() + Math.min(WAKE_MAX_SPIN_MS, Math.max(0.5, 0.25 * expected));
        while (!settled && performance.now() < until) {
          if (Atomics.load(this.doneSeq, 0) === seq) {
            settled = true;
            resolve(seen({ stats: { ...lastStats, computeMs: this.doneMs[0], via: 'flag' }, state: null }));
            return;
          }
        }
      }, Math.max(0, expected - WAKE_LEAD_MS));
    });
  }
}
