// The reference page's loader (docs/metrics.md §6), a classic script in its <head>. Without ?cfg= it
// only records the page's paint entries; with ?cfg=<JSON> it also starts loading that runtime and model
// (create + first run, in a Worker or on the main thread as cfg.worker says), as a page that ships a
// model would. bench/qoe_gui.py reads window.nnjitGui.result() once the page has loaded.
//
// Runtimes mirror the QoE page's (qoe.js): 'nnjit', 'ort', 'tfjs', and 'synthetic' (a busy loop; its
// blockMs is planted here, as the page's image arrives: the fidelity test's known block).
(() => {
  const now = () => performance.now();
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const why = (e) => `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
  const types = (typeof PerformanceObserver === 'function' && PerformanceObserver.supportedEntryTypes) || [];
  const lcp = [];
  // Registered before any content exists; buffered catches anything earlier anyway.
  const lcpObserver = types.includes('largest-contentful-paint')
    ? new PerformanceObserver((l) => { for (const e of l.getEntries()) lcp.push(e.startTime); }) : null;
  lcpObserver?.observe({ type: 'largest-contentful-paint', buffered: true });
  // Observer callbacks come in a low-priority task, and paint entries only once the frame's
  // presentation time is known: on a busy machine both can lag the load event by a lot.
  const lcpNow = () => {
    for (const e of lcpObserver?.takeRecords() ?? []) lcp.push(e.startTime);
    return lcp.length ? lcp[lcp.length - 1] : null;
  };
  const fcpNow = () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null;

  const BUSY = (units) => { let x = 1; const n = units * 2e7; for (let i = 0; i < n; i++) x = (Math.imul(x, 1664525) + 1013904223) | 0; return x; };

  async function tensorsOf(cfg) {
    if (!cfg.inputsUrl) return [];
    const { loadTensors } = await import('/pages/harness.js');
    return loadTensors(cfg.inputsUrl, cfg.inputs);
  }

  const RUNTIMES = {
    async nnjit(cfg) {
      const { Session } = await import('/nnjit/index.js');
      const tensors = await tensorsOf(cfg);
      const s = await Session.create(cfg.bundleUrl, { backend: cfg.backend, worker: cfg.worker, threads: cfg.threads,
        tune: { budgetMs: cfg.tuneMs ?? 0 } });
      await s.run(Object.fromEntries(tensors.map((t) => [t.name, { data: t.data, dims: t.shape }])));
      return () => s.release();
    },
    async ort(cfg) {
      const ort = await import(cfg.backend === 'webgpu' ? '/ort/ort.webgpu.min.mjs' : '/ort/ort.wasm.min.mjs');
      ort.env.wasm.wasmPaths = new URL('/ort/', location.href).href;
      ort.env.wasm.numThreads = cfg.threads;
      ort.env.wasm.proxy = cfg.worker;
      const tensors = await tensorsOf(cfg);
      const s = await ort.InferenceSession.create(cfg.modelUrl, { executionProviders: [cfg.backend], graphOptimizationLevel: 'all' });
      await s.run(Object.fromEntries(tensors.map((t) => [t.name, new ort.Tensor(t.dtype, t.data.slice(), t.shape)])));
      return () => s.release();
    },
    async tfjs(cfg) {
      const { createTfjs } = await import('/pages/tfjs_peer.js');
      const r = await createTfjs(cfg, await tensorsOf(cfg));
      return () => r.release();
    },
    async synthetic(cfg) {
      const units = (cfg.work ?? 1) * (cfg.scale ?? 1);
      if (!cfg.worker) { BUSY(units); return () => {}; }
      const w = new Worker(URL.createObjectURL(new Blob([`const busy = ${BUSY}; onmessage = (e) => postMessage(busy(e.data));`],
        { type: 'text/javascript' })));
      await new Promise((resolve, reject) => { w.onmessage = resolve; w.onerror = (e) => reject(new Error(e.message)); w.postMessage(units); });
      return () => w.terminate();
    },
  };

  const raw = new URLSearchParams(location.search).get('cfg');
  const S = { cfg: null, started: null, loadedAt: null, error: null, release: null, block: null, done: Promise.resolve() };
  if (raw) {
    S.cfg = JSON.parse(raw);
    S.started = now();
    if (S.cfg.runtime === 'synthetic' && S.cfg.blockMs > 0) {
      // Planted where the load's critical path is all main thread: the LCP image has arrived, and is
      // neither painted nor has the load event fired. Whichever the engine does first is the moment:
      // a frame whose rAF sees the image complete (its paint follows the rAF), or the image's load event
      // (the window's load event follows it). Earlier, say while the parser waits on this script,
      // fetches would overlap the block and hide part of it.
      const plant = () => {
        if (S.block) return;
        const start = now();
        while (now() < start + S.cfg.blockMs) { /* the planted block */ }
        S.block = { start, end: now() };
      };
      document.addEventListener('load', (e) => { if (e.target?.id === 'hero') plant(); }, true);
      const watch = () => { if (document.getElementById('hero')?.complete) plant(); else if (!S.block) requestAnimationFrame(watch); };
      requestAnimationFrame(watch);
    }
    const load = RUNTIMES[S.cfg.runtime];
    S.done = (load ? load(S.cfg) : Promise.reject(new Error(`unknown runtime ${S.cfg.runtime}`)))
      .then((release) => { S.release = release; S.loadedAt = now(); }, (e) => { S.error = why(e); });
  }

  window.nnjitGui = {
    // Once the load event has ended, the frame after it painted and the runtime (if any) finished
    // loading: the page's load marks, relative to navigation start (the time origin).
    async result(timeoutMs) {
      const deadline = now() + timeoutMs;
      const nav = () => (performance.getEntriesByType ? performance.getEntriesByType('navigation')[0] : null);
      while (!(nav()?.loadEventEnd > 0) && now() < deadline) await sleep(20);
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      await Promise.race([S.done, sleep(Math.max(0, deadline - now()))]);
      if (S.cfg && S.loadedAt === null && !S.error) S.error = `the runtime did not finish loading within ${timeoutMs} ms`;
      for (const t = now(); now() - t < 3000; await sleep(20)) {
        if ((fcpNow() !== null || !types.includes('paint')) && (lcpNow() !== null || !lcpObserver)) break;
      }
      await sleep(50);  // a later, larger LCP candidate of the same frames
      const out = { types: [...types], fcp: fcpNow(), lcp: lcpNow(),
        load: nav()?.loadEventEnd || null, navigationTiming: Boolean(nav()), runtime: S.cfg?.runtime ?? null,
        runtimeMs: S.loadedAt !== null ? S.loadedAt - S.started : null, error: S.error, block: S.block };
      try { await S.release?.(); } catch { /* the page is left right after: a failed release changes no mark */ }
      return out;
    },
  };
})();
