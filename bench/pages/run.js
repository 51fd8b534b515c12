// Runs an nnjit bundle: create the session, then `runs` timed runs on the same inputs.
import { Session } from '/nnjit/index.js';
import { encodeOutputs, expose, loadTensors, timeRuns, warmUp } from './harness.js';

async function runBundle({ bundleUrl, inputsUrl, inputs, runs, backend = 'wasm', worker = true, relaxedSimd, profileRuns = 0,
  tuneBudgetMs = 0, waitForTuning = true, threads = 1, warmupMs = 0, reuseOutputs = false }) {
  const t0 = performance.now();
  const progress = [];
  const session = await Session.create(bundleUrl, {
    backend, worker, relaxedSimd, threads,
    tune: { budgetMs: tuneBudgetMs, onProgress: (p) => { progress.push(p); self.nnjitProgress = p; } },
  });
  const createMs = performance.now() - t0;
  // Timed runs measure the tuned kernels: the tuner would otherwise share the worker with them.
  const tuning = waitForTuning ? await session.tuned() : session.info.tuning;
  const tuneMs = performance.now() - t0 - createMs;
  try {
    const tensors = await loadTensors(inputsUrl, inputs);
    const feeds = Object.fromEntries(tensors.map((t) => [t.name, { data: t.data, dims: t.shape }]));
    const computeMs = [];
    // reuseOutputs: every run writes into the first run's output arrays (run's options.outputs).
    const first = reuseOutputs ? await session.run(feeds) : null;
    const options = first ? { outputs: Object.fromEntries(Object.entries(first).filter(([, t]) => ArrayBuffer.isView(t.data)).map(([k, t]) => [k, t.data])) } : {};
    if (warmupMs > 0) await warmUp(warmupMs, () => session.run(feeds, options));
    const { times, last } = await timeRuns(runs, async () => {
      const out = await session.run(feeds, options);
      computeMs.push(session.lastRunStats.computeMs);
      return out;
    });
    const profile = profileRuns > 0 ? await session.profile(feeds, { runs: profileRuns }) : null;
    return {
      tuning,
      tuneMs,
      progress: progress.slice(-1),
      profile,
      createMs,
      times,
      computeMs,
      info: session.info,
      ranIn: session.lastRunStats.ranIn,
      crossOriginIsolated: self.crossOriginIsolated,
      outputs: await encodeOutputs(last),
    };
  } finally {
    await session.release();
  }
}

expose(runBundle);
