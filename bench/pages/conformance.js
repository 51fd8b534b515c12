// Many conformance bundles in one page load: each test's session is created, run once on its
// inputs and released; a test's error is its result, never the batch's.
import { Session } from '/nnjit/index.js';
import { encodeOutputs, expose, loadTensors } from './harness.js';

async function runBatch({ tests, backend = 'wasm', worker = false }) {
  const results = [];
  for (const t of tests) {
    let session = null;
    try {
      session = await Session.create(t.bundleUrl, { backend, worker, tune: false, threads: 1 });
      const tensors = await loadTensors(t.inputsUrl, t.inputs);
      const feeds = Object.fromEntries(tensors.map((x) => [x.name, 'value' in x ? x.value : { data: x.data, dims: x.shape }]));
      const out = await session.run(feeds);
      results.push({ name: t.name, ok: true, backend: session.info.backend, outputs: await encodeOutputs(out) });
    } catch (err) {
      results.push({ name: t.name, ok: false, error: { name: err?.name ?? 'Error', message: String(err?.message ?? err) } });
    } finally {
      await session?.release();
    }
    self.nnjitProgress = { done: results.length, total: tests.length };
  }
  return results;
}

expose(runBatch);
