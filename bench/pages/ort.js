// The peer baseline: the same inputs through onnxruntime-web's WASM execution provider, loaded
// from the served node_modules/onnxruntime-web/dist (mounted at /ort/), single-threaded, SIMD.
import * as ort from '/ort/ort.wasm.min.mjs';
import { encodeOutputs, expose, loadTensors, timeRuns } from './harness.js';

async function runOrt({ modelUrl, inputsUrl, inputs, runs, threads = 1, proxy = false }) {
  // env must be set before the first session: ORT reads it once when it initialises wasm.
  ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  ort.env.wasm.proxy = proxy;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(modelUrl, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  const createMs = performance.now() - t0;
  try {
    const tensors = await loadTensors(inputsUrl, inputs);
    // With proxy, ORT transfers the input buffers to its worker (detaching them): each run then
    // needs its own copies, made inside the timed region as nnjit's session.run() makes them.
    const feeds = (copy) => Object.fromEntries(tensors.map((t) => [t.name, new ort.Tensor(t.dtype, copy ? t.data.slice() : t.data, t.shape)]));
    const shared = proxy ? null : feeds(false);
    const { times, last } = await timeRuns(runs, () => session.run(shared ?? feeds(true)));
    const outputs = Object.fromEntries(session.outputNames.map((n) => [n, { data: last[n].data, dims: last[n].dims, dtype: last[n].type }]));
    return {
      createMs,
      times,
      info: { backend: 'ort-wasm', version: ort.env.versions.web, threads, proxy },
      crossOriginIsolated: self.crossOriginIsolated,
      outputs: await encodeOutputs(outputs),
    };
  } finally {
    await session.release();
  }
}

expose(runOrt);
