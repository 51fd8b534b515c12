// One loaded session, independent of where it runs: the worker drives it by messages, the
// {worker: false} fallback calls it directly on the page's thread.
import { loadBundle } from './bundle.js';
import { WasmBackend, relaxedSimdSupported } from './backends/wasm.js';
import { BackendError } from './errors.js';

const BACKENDS = ['wasm'];

export async function createEngine(url, { backend = 'wasm', relaxedSimd } = {}) {
  if (!BACKENDS.includes(backend)) {
    throw new BackendError(`backend "${backend}" is not available (available: ${BACKENDS.join(', ')})`);
  }
  const supported = relaxedSimdSupported();
  if (relaxedSimd === true && !supported) {
    throw new BackendError('relaxed SIMD was required, but this browser does not support it');
  }
  const relaxed = relaxedSimd ?? supported;
  const bundle = await loadBundle(url, { backend, relaxed });
  const impl = await WasmBackend.create(bundle);
  const { manifest } = bundle;
  const io = (v) => ({ name: v.name, dtype: v.dtype, shape: [...v.shape] });
  const ranIn = globalThis.constructor?.name ?? 'unknown';
  return {
    info: {
      backend,
      relaxedSimd: relaxed,
      ranIn,
      model: manifest.model ?? null,
      inputs: manifest.inputs.map(io),
      outputs: manifest.outputs.map(io),
      kernelFiles: Object.fromEntries([...bundle.kernels].map(([id, k]) => [id, k.file])),
      timings: { fetchMs: bundle.fetchMs, compileMs: impl.compileMs },
    },
    run(feeds) {
      const t0 = performance.now();
      const outputs = impl.run(feeds);
      return { outputs, stats: { computeMs: performance.now() - t0, ranIn } };
    },
    profile(feeds, runs) {
      return impl.profile(feeds, runs);
    },
  };
}
