// The Web Worker that owns the session: kernels run here, so inference never blocks the page.
// Protocol: {id, type, args} in, with type 'create' | 'run' | 'io' | 'runShared' | 'generate' | 'profile' | 'tuned' | 'debugLoseDevice';
// {id, ok: true, result} or {id, ok: false, error} out; tuner and token events as {event, data} (no id).
import { createEngine } from './engine.js';
import { BackendError, serializeError } from './errors.js';

let engine = null;
let io = null;

async function handle(type, args) {
  if (type === 'create') {
    engine = await createEngine(args.url, args.options, (event, data) => self.postMessage({ event, data }));
    return [engine.info, []];
  }
  if (!engine) throw new BackendError(`${type} before the session was created`);
  if (type === 'run') {
    const result = await engine.run(args.feeds);
    return [result, Object.values(result.outputs)];
  }
  if (type === 'io') {
    // The page's shared staging buffers (cross-origin isolated pages): inputs and outputs move
    // through them with one copy each way, no transfer and no fresh allocation per run here.
    const view = (sab, list) => Object.fromEntries(list.map(({ name, offset, bytes }) => [name, new Uint8Array(sab, offset, bytes)]));
    io = {
      feeds: view(args.inputs.buffer, args.inputs.layout), sinks: view(args.outputs.buffer, args.outputs.layout),
      doneSeq: new Int32Array(args.done, 0, 1), doneMs: new Float64Array(args.done, 8, 1),
    };
    return [true, []];
  }
  if (type === 'runShared') {
    if (!io) throw new BackendError('runShared before the shared buffers were set up');
    const result = await engine.run(io.feeds, io.sinks);
    // Outputs are in the sinks: a page thread watching the flag may take them before this reply lands,
    // with the last reply's state — so not after a run that changed the backend (a WebGPU fallback):
    // that one's news must come with it.
    if (result.stats.backend === io.lastBackend) {
      io.doneMs[0] = result.stats.computeMs;
      Atomics.store(io.doneSeq, 0, args.seq);
    }
    io.lastBackend = result.stats.backend;
    return [result, []];
  }
  if (type === 'generate') return [await engine.generate(args.prompt, args.options), []];
  if (type === 'tuned') return [await engine.tuned(), []];
  if (type === 'profile') return [await engine.profile(args.feeds, args.runs, args.options), []];
  if (type === 'debugLoseDevice') return [engine.debugLoseDevice(args), []];
  throw new BackendError(`unknown worker request ${JSON.stringify(type)}`);
}

self.onmessage = async ({ data: { id, type, args } }) => {
  try {
    const [result, transfer] = await handle(type, args);
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (err) {
    self.postMessage({ id, ok: false, error: serializeError(err) });
  }
};
