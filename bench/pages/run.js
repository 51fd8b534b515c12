// Runs an nnjit bundle: create the session, then `runs` timed runs on the same inputs.
import { Session } from '/nnjit/index.js';
import { encodeOutputs, expose, loadTensors, timeRuns } from './harness.js';

async function runBundle({ bundleUrl, inputsUrl, inputs, runs, backend = 'wasm', worker = true, relaxedSimd, profileRuns = 0 }) {
  const t0 = performance.now();
  const session = await Session.create(bundleUrl, { backend, worker, relaxedSimd });
  const createMs = performance.now() - t0;
  try {
    const tensors = await loadTensors(inputsUrl, inputs);
    const feeds = Object.fromEntries(tensors.map((t) => [t.name, { data: t.data, dims: t.shape }]));
    const computeMs = [];
    const { times, last } = await timeRuns(runs, async () => {
      const out = await session.run(feeds);
      computeMs.push(session.lastRunStats.computeMs);
      return out;
    });
    const profile = profileRuns > 0 ? await session.profile(feeds, { runs: profileRuns }) : null;
    return {
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
