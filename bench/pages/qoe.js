// The QoE bench page: one (runtime, model) cell, driven phase by phase by bench/qoe_page.py through
// window.nnjitQoe. The page only records raw observations (rAF timestamps, input handler times,
// PerformanceObserver entries, run times); bench/qoe_metrics.py turns them into the metrics of
// docs/metrics.md, so the definitions live in one place and are testable without a browser.
//
// Runtimes: 'nnjit' (Session.create, worker true|false), 'ort' (onnxruntime-web from /ort/, proxy =
// its Worker), 'tfjs' (TF.js wasm, ./tfjs_peer.js), 'synthetic' (a fixed busy loop on the main thread
// or in a Worker: a "model" whose work is exact, for the fidelity tests: work × scale, a planted
// allocation, a hang).
import { Session } from '/nnjit/index.js';
import { encodeOutputs, loadTensors } from './harness.js';
import { loadSamples, runDataset, runStream } from './qoe_data.js';
import { createTfjs } from './tfjs_peer.js';

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const within = (promise, ms, what) => Promise.race([
  promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))]);
const why = (e) => `${e?.name ?? 'Error'}: ${e?.message ?? e}`;

const S = { frames: [], interactions: [], events: [], longtasks: [], loafs: [], runner: null, looping: false };
const anim = document.getElementById('anim');
const target = document.getElementById('target');
const entryTypes = (typeof PerformanceObserver === 'function' && PerformanceObserver.supportedEntryTypes) || [];

// The animation runs from page load to the end: smoothness = how regularly these callbacks come.
function tick(t) {
  S.frames.push(t);
  anim.style.transform = `translateX(${(t / 5) % 300}px)`;
  requestAnimationFrame(tick);
}
requestAnimationFrame(tick);

function observe(type, sink, map, extra = {}) {
  if (!entryTypes.includes(type)) return;
  new PerformanceObserver((list) => { for (const e of list.getEntries()) sink.push(map(e)); }).observe({ type, buffered: true, ...extra });
}
observe('event', S.events, (e) => ({ name: e.name, startTime: e.startTime, processingStart: e.processingStart,
  duration: e.duration, interactionId: e.interactionId ?? 0 }), { durationThreshold: 16 });
observe('longtask', S.longtasks, (e) => ({ startTime: e.startTime, duration: e.duration }));
observe('long-animation-frame', S.loafs, (e) => ({ startTime: e.startTime, duration: e.duration }));

// Own measurement, on every engine: handler start − event.timeStamp; next paint = the first rAF
// after the handler, then a task (the frame has been produced when it runs). A click is measured at
// its pointerdown, the interaction's first event: the driver's press waits behind a busy main
// thread, while its release (and so `click`) is only sent once the press was handled.
function onInput(ev) {
  if (ev.type === 'keydown' && ev.repeat) return;
  const start = now();
  const rec = { type: ev.type, timeStamp: ev.timeStamp, delay: start - ev.timeStamp, paint: null };
  const until = start + 1;
  while (now() < until) { /* the handler's fixed 1 ms of work (docs/metrics.md) */ }
  requestAnimationFrame(() => setTimeout(() => { rec.paint = now() - ev.timeStamp; }, 0));
  S.interactions.push(rec);
}
target.addEventListener('pointerdown', onInput);
target.addEventListener('keydown', onInput);

// The synthetic model's work: an int32 LCG the JIT cannot fold away, the same cost per iteration
// (a float modulo would cost more as its operands grow), so time is linear in `units` (~20 ms each here).
const BUSY_SRC = 'function busy(units) { let x = 1; const n = units * 2e7; for (let i = 0; i < n; i++) x = (Math.imul(x, 1664525) + 1013904223) | 0; return x; }';
const busy = new Function(`${BUSY_SRC}; return busy;`)();

function inWorker(src) {
  const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
  let pending = null;
  w.onmessage = (e) => { const p = pending; pending = null; p.resolve(e.data); };
  w.onerror = (e) => { e.preventDefault(); pending?.reject(new Error(`synthetic worker failed: ${e.message}`)); };
  return { call: (arg) => new Promise((resolve, reject) => { pending = { resolve, reject }; w.postMessage(arg); }), terminate: () => w.terminate() };
}

// The adapter ORT-web's WebGPU EP took, as nnjit's session.info.gpu describes its own (null where ORT does not say).
function ortAdapter(ort) {
  try {
    const a = ort.env.webgpu?.adapter;
    const i = a?.info;
    return i ? { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description,
      fallbackAdapter: Boolean(i.isFallbackAdapter ?? a.isFallbackAdapter) } : null;
  } catch {
    return null;
  }
}

const RUNNERS = {
  tfjs: createTfjs,

  async synthetic({ work = 1, scale = 1, allocMB = 0, hang = false, worker }) {
    if (hang) for (;;) { /* a page that never answers: the harness's timeout must catch it */ }
    const t0 = now();
    const units = work * scale;
    // Filled, so every page is resident (an untouched allocation is only reserved, not in PSS).
    if (allocMB > 0) S.held = new Uint8Array(allocMB * 1048576).fill(1);
    const w = worker ? inWorker(`${BUSY_SRC}; onmessage = (e) => postMessage(busy(e.data));`) : null;
    const run = w ? () => w.call(units) : async () => busy(units);
    const created = now();
    await run();
    const t1 = now();
    return { cold: { firstRun: t1 - created, total: t1 - t0 }, run, last: null, info: { runtime: 'synthetic', units, worker: Boolean(w) },
      release() { w?.terminate(); S.held = null; } };
  },

  async nnjit({ bundleUrl, backend = 'wasm', worker = true, threads = 1, tuneMs = 0 }, tensors) {
    const feedsOf = (ts) => Object.fromEntries(ts.map((t) => [t.name, { data: t.data, dims: t.shape }]));
    const feeds = feedsOf(tensors);
    const t0 = now();
    const session = await Session.create(bundleUrl, { backend, worker, threads, tune: { budgetMs: tuneMs } });
    const created = now();
    if (tuneMs > 0) await session.tuned();
    const tuned = now();
    const last = await session.run(feeds);
    const t1 = now();
    const info = session.info;
    if (backend === 'webgpu' && info.backend !== 'webgpu') throw new Error(`webgpu: the session runs on ${info.backend} (${info.fallbackReason})`);
    return {
      cold: { fetch: info.timings.fetchMs, compile: info.timings.compileMs, tune: tuneMs > 0 ? tuned - created : 0, firstRun: t1 - tuned, total: t1 - t0 },
      run: () => session.run(feeds), runOn: (ts) => session.run(feedsOf(ts)), last,
      info: { runtime: 'nnjit', backend: info.backend, threads: info.threads, threadsReason: info.threadsReason ?? null,
        worker: info.worker, relaxedSimd: info.relaxedSimd, tuning: tuneMs > 0, gpu: info.gpu ?? null, memoryBytes: info.memoryBytes },
      release: () => session.release(),
    };
  },

  async ort({ modelUrl, backend = 'wasm', worker = false, threads = 1 }, tensors) {
    const builds = { wasm: '/ort/ort.wasm.min.mjs', webgpu: '/ort/ort.webgpu.min.mjs' };
    const t0 = now();
    const ort = await import(builds[backend]);
    ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
    ort.env.wasm.numThreads = threads;
    ort.env.wasm.proxy = worker;
    const session = await ort.InferenceSession.create(modelUrl, { executionProviders: [backend], graphOptimizationLevel: 'all' });
    // With proxy, ORT transfers (detaches) the input buffers: each run gets its own copies.
    const feeds = (ts) => Object.fromEntries(ts.map((t) => [t.name, new ort.Tensor(t.dtype, worker ? t.data.slice() : t.data, t.shape)]));
    const runOn = async (ts) => {
      const out = await session.run(feeds(ts));
      return Object.fromEntries(session.outputNames.map((n) => [n, { data: out[n].data, dims: out[n].dims, dtype: out[n].type }]));
    };
    const run = () => runOn(tensors);
    const created = now();
    const last = await run();
    const t1 = now();
    return { cold: { firstRun: t1 - created, total: t1 - t0 }, run, runOn, last,
      info: { runtime: 'ort', backend, threads, worker, version: ort.env.versions?.web ?? null,
        gpu: backend === 'webgpu' ? ortAdapter(ort) : null },
      release: () => session.release() };
  },
};

async function loop() {
  const chan = new MessageChannel();
  // A task boundary between runs (not a microtask): input, rAF and rendering can get in between
  // main-thread runs, as in a page that runs a model back to back; setTimeout(0) would be clamped.
  const yieldTask = () => new Promise((r) => { chan.port1.onmessage = r; chan.port2.postMessage(0); });
  try {
    while (S.looping) {
      S.last = await S.runner.run();
      S.loopRuns += 1;
      await yieldTask();
    }
  } catch (e) {
    S.loopError = why(e);
  }
}

const framesIn = (t0, t1) => S.frames.filter((t) => t >= t0 && t <= t1);

window.nnjitQoe = {
  features: () => ({ entryTypes: [...entryTypes], performanceMemory: Boolean(performance.memory),
    uasm: typeof performance.measureUserAgentSpecificMemory === 'function', crossOriginIsolated: self.crossOriginIsolated === true,
    userAgent: navigator.userAgent }),

  async idle(ms) {
    const t0 = now();
    await sleep(ms);
    const t1 = now();
    return { t0, t1, frames: framesIn(t0, t1) };
  },

  async load(cfg) {
    const tensors = cfg.inputsUrl ? await loadTensors(cfg.inputsUrl, cfg.inputs) : [];
    S.runner = await RUNNERS[cfg.runtime](cfg, tensors);
    S.last = S.runner.last;
    return { cold: S.runner.cold, info: S.runner.info };
  },

  async warm({ warmup, warmupMs, runs }) {
    // At least `warmup` runs and `warmupMs`: a page that just loaded keeps getting faster for about a
    // second here (start-up work on the other core, tier-up), which a count alone under-warms.
    const w0 = now();
    for (let i = 0; i < warmup || now() - w0 < warmupMs; i++) S.last = await S.runner.run();
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t0 = now();
      S.last = await S.runner.run();
      times.push(now() - t0);
    }
    return { times, outputs: S.last && typeof S.last === 'object' ? await encodeOutputs(S.last) : null };
  },

  // Real data (docs/metrics.md §5): each sample alone, then the same samples as a 30 fps stream.
  async dataset({ url, specs, n, output }) {
    if (!S.runner.runOn) throw new Error('this runtime cannot run other inputs');
    S.samples = await loadSamples(url, specs, n);
    return runDataset(S.runner.runOn, S.samples, output);
  },

  stream: (o) => runStream(S.runner.runOn, S.samples, o),

  loopStart() {
    S.looping = true;
    S.loopRuns = 0;
    S.loopError = null;
    S.loopT0 = now();
    S.loopDone = loop();
    target.focus();
    const r = target.getBoundingClientRect();
    return { t0: S.loopT0, x: r.left + r.width / 2, y: r.top + r.height / 2 };
  },

  loopRuns: () => ({ runs: S.loopRuns, error: S.loopError }),

  async loopStop() {
    S.looping = false;
    await S.loopDone;
    const t0 = S.loopT0;
    const t1 = now();
    // Let the last interactions' next paints and observer callbacks land.
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    await sleep(100);
    const after = (list, key) => list.filter((e) => e[key] >= t0 && e[key] <= t1);
    return { t0, t1, runs: S.loopRuns, error: S.loopError, frames: framesIn(t0, t1),
      interactions: after(S.interactions, 'timeStamp'), events: after(S.events, 'startTime'),
      longtasks: after(S.longtasks, 'startTime'), loafs: after(S.loafs, 'startTime') };
  },

  async memory() {
    const pm = performance.memory;
    const out = { jsHeapUsed: pm ? pm.usedJSHeapSize : null, uasmBytes: null, uasmReason: null };
    if (typeof performance.measureUserAgentSpecificMemory !== 'function') {
      out.uasmReason = 'no performance.measureUserAgentSpecificMemory';
    } else {
      try {
        out.uasmBytes = (await within(performance.measureUserAgentSpecificMemory(), 10000, 'measureUserAgentSpecificMemory')).bytes;
      } catch (e) {
        out.uasmReason = why(e);
      }
    }
    return out;
  },

  // The fidelity test's planted block: one task that keeps the main thread busy for leadMs + blockMs.
  // The driver sends its input right after planting, so the input lands in the lead-in and waits
  // behind the whole blockMs (docs/metrics.md).
  plantBlock({ leadMs, blockMs }) {
    setTimeout(() => { const end = now() + leadMs + blockMs; while (now() < end) { /* blocked */ } }, 0);
    return true;
  },

  async release() {
    const r = S.runner;
    S.runner = null;
    S.last = null;
    await r?.release();
    return true;
  },
};
