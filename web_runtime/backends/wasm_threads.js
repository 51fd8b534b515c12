// The thread pool of a threaded wasm session: T-1 helper Workers share the session's memory; a
// split kernel call runs `run_part(args…, part, T)` on every thread (the calling one is part 0)
// and returns when all parts are done. Helpers block in Atomics.wait between calls, so a call
// costs a futex wake-up, not a postMessage round trip.
import { BackendError } from '../errors.js';
import { CTL } from './wasm_ctl.js';

// A split call's parts take milliseconds: a helper that has not finished one in this long is gone.
const STALL_MS = 60000;

// Spinning pays only when every thread has a core of its own: with more threads than cores a
// spinning thread holds the core the thread it waits for needs (4 threads on 2 cores ran mlp 3×
// slower than 1 thread while spinning). How long: long enough to span the gap between two runs of a
// Worker session (reply, page, next request: ~0.4-0.6 ms here), so a stream of runs finds its helpers
// awake; 1 ms against 0.5 ms, 2 threads, Chromium, median page time of interleaved page loads:
// matmul-512 3.07 vs 3.71 ms, encoder-layer 6.80 vs 7.17, mobilenetv2 9.07 vs 8.99.
const SPIN_MS = 1;

export function spinMs(threads, cores = globalThis.navigator?.hardwareConcurrency ?? 1) {
  return threads <= cores ? SPIN_MS : 0;
}

/** Whether this thread may sleep in Atomics.wait: a page's main thread may not (browsers throw), a Worker may. */
function mayBlock() {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

export class ThreadPool {
  /** Start `threads - 1` helpers on `memory` (a shared WebAssembly.Memory). */
  static async create(memory, threads) {
    const ctl = new Int32Array(new SharedArrayBuffer(CTL.BYTES));
    const workers = [];
    for (let part = 1; part < threads; part++) {
      const w = new Worker(new URL('../thread_worker.js', import.meta.url), { type: 'module', name: `nnjit-thread-${part}` });
      w.postMessage({ type: 'init', memory, ctl: ctl.buffer, part, parts: threads, spinMs: spinMs(threads) });
      workers.push(w);
    }
    const pool = new ThreadPool(ctl, workers, threads, memory);
    await pool.#serve();
    return pool;
  }

  constructor(ctl, workers, threads, memory) {
    this.ctl = ctl;
    this.workers = workers;
    this.threads = threads;
    this.spinMs = spinMs(threads);
    // On a page's main thread ({worker: false}) the join spins to the end: the thread is busy with the
    // run anyway (its part 0 just ran there), as onnxruntime-web's main thread is with its pthreads.
    this.mayBlock = mayBlock();
    this.stallMs = STALL_MS;
    /** Why the pool cannot run calls any more (a helper stopped answering), or null. */
    this.failed = null;
    this.slots = new Map(); // module → slot
    /** The i32 at byte 0 of the shared memory: the task counter of a split call (zeroed before each). */
    this.tasks = new Int32Array(memory.buffer, 0, 1);
  }

  /**
   * Every helper enters its wait loop (it answers 'ready'); resolves once all have, and only then
   * rejects if one reported an error on the way (a kernel it could not load). Waiting for all even
   * then keeps the pool in step: a helper still on its way in would otherwise read the generation
   * counter after the next call bumped it, miss that call and leave the coordinator waiting for it.
   */
  #serve() {
    const errors = [];
    const ready = Promise.all(this.workers.map((w) => new Promise((resolve, reject) => {
      w.onmessage = ({ data }) => {
        if (data.type === 'ready') resolve();
        else errors.push(data.message);
      };
      w.onerror = (ev) => reject(new BackendError(`a wasm thread failed to start: ${ev.message || 'its script could not be loaded'}`));
      w.postMessage({ type: 'serve' });
    })));
    return ready.then(() => {
      if (errors.length) throw new BackendError(`a wasm thread failed: ${errors[0]}`);
    });
  }

  /** Helpers leave their wait loop (to take new kernels); returns once all have. */
  #yield() {
    const { ctl } = this;
    Atomics.store(ctl, CTL.OP, CTL.YIELD);
    Atomics.store(ctl, CTL.REMAIN, this.workers.length);
    Atomics.add(ctl, CTL.GEN, 1);
    Atomics.notify(ctl, CTL.GEN);
    this.#join();
  }

  #join() {
    const { ctl } = this;
    // The helpers' parts end about when ours does: spin a little before sleeping (see thread_worker.js).
    const t0 = performance.now();
    const until = t0 + this.spinMs;
    while (Atomics.load(ctl, CTL.REMAIN) !== 0 && (!this.mayBlock || performance.now() < until)) {
      if (!this.mayBlock && performance.now() - t0 > this.stallMs) this.#stalled();
    }
    for (let r = Atomics.load(ctl, CTL.REMAIN); r !== 0; r = Atomics.load(ctl, CTL.REMAIN)) {
      const wait = Math.min(10000, this.stallMs);
      if (Atomics.wait(ctl, CTL.REMAIN, r, wait) === 'timed-out' && performance.now() - t0 > this.stallMs) this.#stalled();
    }
  }

  // Say so rather than wait for ever; the pool is unusable after this.
  #stalled() {
    const left = Atomics.load(this.ctl, CTL.REMAIN);
    this.destroy();
    this.failed = `the wasm threads stopped answering: ${left} of ${this.threads - 1} helper(s) did not finish a call within ${this.stallMs / 1000} s`;
    throw new BackendError(this.failed);
  }

  /** Slot of `module` (a compiled kernel exporting run_part) in every helper, loading it first if needed. */
  async slotOf(module) {
    if (this.failed) throw new BackendError(this.failed);
    if (this.slots.has(module)) return this.slots.get(module);
    const slot = this.slots.size;
    this.#yield();
    let unsent = null;
    try {
      for (const w of this.workers) w.postMessage({ type: 'load', kernels: [{ slot, module, entry: 'run_part' }] });
    } catch (e) {
      unsent = e;
    }
    // Whatever happened, the helpers go back to their wait loop before this returns or throws: a call
    // made while one is outside it would wait for that helper for good.
    await this.#serve();
    if (unsent) throw new BackendError(`cannot hand a kernel to the wasm threads: ${unsent.message}`);
    this.slots.set(module, slot);
    return slot;
  }

  /** Run `fn` (this thread's run_part) as part 0 and `slot` on the helpers; throws if any part trapped. */
  run(slot, fn, args) {
    if (this.failed) throw new BackendError(this.failed);
    const { ctl } = this;
    const n = args.length;
    if (n > CTL.MAX_ARGS) throw new BackendError(`a kernel call with ${n} arguments cannot be split (at most ${CTL.MAX_ARGS})`);
    for (let i = 0; i < n; i++) ctl[CTL.ARGS + i] = args[i];
    ctl[CTL.NARGS] = n;
    Atomics.store(ctl, CTL.ERROR, 0);
    // Kernels that deal their work out at run time (gemm's row tiles, softmax's slices) count it off here (docs/space.md).
    Atomics.store(this.tasks, 0, 0);
    Atomics.store(ctl, CTL.OP, slot);
    Atomics.store(ctl, CTL.REMAIN, this.workers.length);
    Atomics.add(ctl, CTL.GEN, 1);
    Atomics.notify(ctl, CTL.GEN);
    let failure = null;
    try {
      fn(...args, 0, this.threads);
    } catch (e) {
      failure = e;
    }
    this.#join();
    if (failure) throw failure;
    const bad = Atomics.load(ctl, CTL.ERROR);
    if (bad) {
      // TextDecoder does not take views of shared memory: copy the message out first.
      const raw = new Uint8Array(ctl.buffer, CTL.MSG * 4, CTL.MSG_BYTES).slice();
      const msg = new TextDecoder().decode(raw.subarray(0, Math.max(raw.indexOf(0), 0) || raw.length));
      throw new BackendError(`part ${bad} of ${this.threads} trapped: ${msg}`);
    }
  }

  destroy() {
    for (const w of this.workers) w.terminate();
    this.workers = [];
  }
}
