// Tuning of one session: cached winners first, then the tuner in the background, results saved.
// Each measurement is queued like a run (`serial`), so runs and measurements never overlap and a
// run waits for at most one measurement.
import { cacheKey, loadWinners, saveWinners } from './cache.js';
import { DEFAULT_BUDGET_MS, tune } from './tuner.js';

/**
 * Start tuning `impl` (a backend with tuningGroups/measure/apply). `emit(event, data)` reports
 * 'progress' ({done, total, bestSoFar, elapsedMs}) and 'tuned' (the final state). Returns
 * {state, done}: `state` is the live record session.info.tuning shows; `done` resolves to it.
 */
export function startTuning({ impl, manifest, backend, device, threads, budgetMs = DEFAULT_BUDGET_MS, serial, emit, isStopped }) {
  const groups = impl.tuningGroups ? impl.tuningGroups() : [];
  const tunable = groups.filter((g) => g.candidates.length > 1);
  const state = {
    status: budgetMs > 0 ? 'running' : 'off',
    budgetMs,
    groups: tunable.length,
    candidates: tunable.reduce((n, g) => n + g.candidates.length, 0),
    source: null,
    cacheDropped: null,
    result: null,
  };
  if (budgetMs <= 0 || tunable.length === 0) {
    if (tunable.length === 0) state.status = 'nothing to tune';
    return { state, done: Promise.resolve(state) };
  }

  const done = (async () => {
    const key = await cacheKey(manifest, { backend, device, threads });
    const { winners, dropped } = await loadWinners(key, tunable);
    if (dropped) {
      state.cacheDropped = dropped;
      console.warn(`nnjit: dropped a tuning cache entry: ${dropped}`);
    }
    for (const g of tunable) {
      const w = winners?.get(g.key);
      if (w) Object.assign(g, { winner: w.winner, done: w.done, tried: w.tried });
    }
    const pending = tunable.filter((g) => !g.done).length;
    state.source = winners ? (pending ? 'cache, resumed' : 'cache') : 'tuned';
    if (winners && !pending) {
      console.info(`nnjit: tuning results for this device were cached: ${tunable.length} step groups, nothing to tune`);
    }
    const result = await tune({
      groups: tunable,
      budgetMs,
      measure: (g, c) => serial(() => impl.measure(g, c)),
      apply: (g, c) => serial(() => impl.apply(g, c)),
      onProgress: (p) => emit('progress', p),
      shouldStop: isStopped,
    });
    state.result = {
      complete: result.complete, elapsedMs: result.elapsedMs, measured: result.measured, total: result.total,
      defaultMs: result.defaultMs, bestMs: result.bestMs,
      winners: result.groups.map((g, i) => ({ steps: tunable[i].steps, candidate: tunable[i].candidates[g.winner], done: g.done })),
    };
    state.status = isStopped() ? 'stopped' : 'done';
    if (!isStopped() && result.measured > 0) await saveWinners(key, result);
    emit('tuned', state);
    return state;
  })().catch((e) => {
    state.status = 'failed';
    state.error = e.message;
    emit('tuned', state);
    return state;
  });
  return { state, done };
}
