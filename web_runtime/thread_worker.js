// A helper thread of a threaded wasm session (backends/wasm_threads.js): it shares the session's
// memory and runs its part of each split kernel call, woken through the shared control block.
// Protocol (messages): {type: 'init', memory, ctl, part, parts}, {type: 'load', kernels: [{slot,
// module, entry}]}, {type: 'serve'}: block on the control block until told to yield.
import { CTL } from './backends/wasm_ctl.js';

let memory = null;
let ctl = null;
let part = 0;
let parts = 1;
const fns = [];
let spinMs = 0; // set by 'init': wasm_threads.js spinMs (0 when threads outnumber cores)

function serve() {
  let seen = Atomics.load(ctl, CTL.GEN);
  self.postMessage({ type: 'ready' });
  for (;;) {
    // Spin briefly before sleeping: the next split step of a run usually follows within a fraction
    // of a millisecond, and waking a sleeping thread (on a VM: a halted vCPU) costs about as much.
    const until = performance.now() + spinMs;
    while (Atomics.load(ctl, CTL.GEN) === seen && performance.now() < until);
    // Only a new generation is a job. A wake-up without one is the late notify of the job just done:
    // the coordinator bumped GEN, lost its core before notifying, and this thread ran the job, spun and
    // slept meanwhile. Taken for a job, it ran that job twice and drove REMAIN to -1, so the next join
    // never ended (seen once in a 2-thread benchmark on a busy machine).
    while (Atomics.load(ctl, CTL.GEN) === seen) Atomics.wait(ctl, CTL.GEN, seen);
    seen = Atomics.load(ctl, CTL.GEN);
    const op = Atomics.load(ctl, CTL.OP);
    if (op === CTL.YIELD) {
      // Back to the event loop, to receive kernels; the coordinator sends 'serve' after them.
      if (Atomics.sub(ctl, CTL.REMAIN, 1) === 1) Atomics.notify(ctl, CTL.REMAIN);
      return;
    }
    const n = ctl[CTL.NARGS];
    const args = Array.from(ctl.subarray(CTL.ARGS, CTL.ARGS + n));
    try {
      fns[op](...args, part, parts);
    } catch (e) {
      // The coordinator is blocked in its own part: the message travels in the control block.
      const msg = new TextEncoder().encode(String(e?.message ?? e)).slice(0, CTL.MSG_BYTES - 1);
      const bytes = new Uint8Array(ctl.buffer, CTL.MSG * 4, CTL.MSG_BYTES);
      bytes.fill(0);
      bytes.set(msg);
      Atomics.store(ctl, CTL.ERROR, part);
    }
    if (Atomics.sub(ctl, CTL.REMAIN, 1) === 1) Atomics.notify(ctl, CTL.REMAIN);
  }
}

// Synchronous handling: 'serve' blocks this thread, so a 'load' still awaiting an asynchronous
// instantiate when 'serve' arrives would never finish (WebKit ran into exactly that: the helper then
// served a slot it had not loaded). Workers may instantiate synchronously at any size.
self.onmessage = ({ data }) => {
  try {
    if (data.type === 'init') ({ memory, part, parts, spinMs } = data), (ctl = new Int32Array(data.ctl));
    else if (data.type === 'load') {
      for (const { slot, module, entry } of data.kernels) {
        fns[slot] = new WebAssembly.Instance(module, { env: { memory } }).exports[entry];
      }
    } else if (data.type === 'serve') serve();
  } catch (e) {
    self.postMessage({ type: 'error', message: `${data.type}: ${e.message}` });
  }
};
