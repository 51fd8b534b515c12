// The Web Worker that owns the session: kernels run here, so inference never blocks the page.
// Protocol: {id, type, args} in, with type 'create' | 'run' | 'profile' | 'tuned' | 'debugLoseDevice';
// {id, ok: true, result} or {id, ok: false, error} out; tuner events as {event, data} (no id).
import { createEngine } from './engine.js';
import { BackendError, serializeError } from './errors.js';

let engine = null;

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
