// The peer baseline: the same inputs through onnxruntime-web, loaded from the served
// node_modules/onnxruntime-web/dist (mounted at /ort/). ep 'wasm': its WASM EP, single-threaded,
// SIMD. ep 'webgpu': its WebGPU EP, on the adapter navigator.gpu gives this page, the one the
// runtime's webgpu backend gets. In 1.30.0 that EP ships in ort.webgpu.min.mjs (the native WebGPU EP,
// ort-wasm-simd-threaded.asyncify.wasm); ort.all.min.mjs carries the older JSEP build instead.
import { encodeOutputs, expose, loadTensors, timeRuns, warmUp } from './harness.js';

const BUILDS = { wasm: '/ort/ort.wasm.min.mjs', webgpu: '/ort/ort.webgpu.min.mjs' };

async function runOrt({ modelUrl, inputsUrl, inputs, runs, ep = 'wasm', threads = 1, proxy = false, warmupMs = 0 }) {
  if (!BUILDS[ep]) throw new Error(`unknown execution provider ${JSON.stringify(ep)} (known: ${Object.keys(BUILDS).join(', ')})`);
  const ort = await import(BUILDS[ep]);
  // env must be set before the first session: ORT reads it once when it initialises wasm.
  ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true;
  ort.env.wasm.proxy = proxy;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(modelUrl, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  const createMs = performance.now() - t0;
  try {
    const tensors = await loadTensors(inputsUrl, inputs);
    // With proxy, ORT transfers the input buffers to its worker (detaching them): each run then
    // needs its own copies, made inside the timed region as nnjit's session.run() makes them.
    const feeds = (copy) => Object.fromEntries(tensors.map((t) => [t.name, new ort.Tensor(t.dtype, copy ? t.data.slice() : t.data, t.shape)]));
    const shared = proxy ? null : feeds(false);
    if (warmupMs > 0) await warmUp(warmupMs, () => session.run(shared ?? feeds(true)));
    const { times, last } = await timeRuns(runs, () => session.run(shared ?? feeds(true)));
    const outputs = Object.fromEntries(session.outputNames.map((n) => [n, { data: last[n].data, dims: last[n].dims, dtype: last[n].type }]));
    const adapter = ep === 'webgpu' ? ort.env.webgpu?.adapter?.info : null;
    return {
      createMs,
      times,
      info: {
        backend: `ort-${ep}`, version: ort.env.versions.web, threads, proxy,
        gpu: adapter ? { vendor: adapter.vendor, architecture: adapter.architecture } : null,
      },
      crossOriginIsolated: self.crossOriginIsolated,
      outputs: await encodeOutputs(outputs),
    };
  } finally {
    await session.release();
  }
}

expose(runOrt);
