// The QoE page's 'tfjs' runtime (tfjs-wasm): TF.js 4.22 with its wasm backend, loaded from the served
// node_modules dists (/tfjs-core/, /tfjs-wasm/; the wasm binaries from there too, never a CDN), on the
// main thread or in a Worker, running the program bench/tfjs_program.py prepared. Same shape as the
// page's other runners: {cold, run, last, info, release}.

const now = () => performance.now();
const SCRIPTS = ['/tfjs-core/tf-core.min.js', '/tfjs-wasm/tf-backend-wasm.min.js', '/pages/tfjs_runner.js'];

function addScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`tfjs: could not load ${src}`));
    document.head.appendChild(s);
  });
}

async function onMainThread() {
  for (const src of SCRIPTS) await addScript(src); // in order: each UMD build extends the previous one's global
  return { call: async (method, arg) => self.nnjitTfjs[method](arg), terminate() {} };
}

function inWorker() {
  const w = new Worker('/pages/tfjs_worker.js');
  const pending = new Map();
  let next = 0;
  w.onmessage = ({ data }) => {
    const p = pending.get(data.id);
    pending.delete(data.id);
    if (data.ok) p.resolve(data.value); else p.reject(new Error(data.error));
  };
  w.onerror = (e) => {
    e.preventDefault();
    for (const p of pending.values()) p.reject(new Error(`tfjs worker failed: ${e.message}`));
    pending.clear();
  };
  return {
    call: (method, arg, transfer = []) => new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      w.postMessage({ id, method, arg }, transfer);
    }),
    terminate: () => w.terminate(),
  };
}

export async function createTfjs({ programUrl, constsUrl, worker = true, threads = 1 }, tensors) {
  const t0 = now();
  const engine = worker ? inWorker() : await onMainThread();
  const loaded = await engine.call('load', { wasmUrl: new URL('/tfjs-wasm/', location.href).href, programUrl, constsUrl, threads });
  // A Worker gets fresh copies each run (transferred), made inside the timed region as the other
  // runtimes' Worker placements copy their inputs.
  const run = worker
    ? () => {
      const copies = tensors.map((t) => ({ name: t.name, shape: t.shape, data: t.data.slice() }));
      return engine.call('run', copies, copies.map((t) => t.data.buffer));
    }
    : () => engine.call('run', tensors);
  const created = now();
  const last = await run();
  const t1 = now();
  return {
    cold: { firstRun: t1 - created, total: t1 - t0 },
    run,
    last,
    // threads = what the backend says it runs, not what was asked: 4.22 in Chromium and Firefox answers 1 when asked for 2.
    info: { runtime: 'tfjs', backend: loaded.backend, version: loaded.version, worker, threads: loaded.threadsReported,
      threadsRequested: threads, simd: loaded.simd, multithread: loaded.multithread },
    release: async () => { await engine.call('release'); engine.terminate(); },
  };
}
