// The on-device JIT: time each step group's candidate kernels here, on this device, within a
// wall-clock budget, and swap the winners in while the session keeps serving runs.
//
// Backend-neutral: a group is a set of steps with the same candidate list (identical op signatures
// share one tuning); `measure(group, candidate)` returns ms per call, `apply(group, candidate)`
// swaps a candidate in. Candidate 0 of each group is what runs before tuning.
//
// Order: first every group's current kernel is timed (the cost that tuning can cut), then groups
// are tuned from the most expensive down (cost = ms per call × how many steps use it), so a budget
// that runs out early has already spent itself where the model spends its time.

// A new best must beat the current one by this much: timing noise alone should not swap kernels.
const MARGIN = 0.98;
const CONFIRM_PAIRS = 3;

export const DEFAULT_BUDGET_MS = 30000;

/**
 * groups: [{key, candidates: [c0, c1, …], steps: [step ids], done?: boolean, winner?: index, tried?: n}]
 * (a group with done=true is skipped; `winner` applies a cached choice first; an unfinished search
 * resumes at candidate `tried`, against the cached winner).
 * Resolves to {complete, elapsedMs, measured, total, defaultMs, bestMs, groups: [{key, winner, done, times}]}.
 */
export async function tune({ groups, measure, apply, budgetMs = DEFAULT_BUDGET_MS, onProgress = null,
  warmupMs = 1000, now = () => performance.now(), pause = () => new Promise((r) => setTimeout(r, 0)), shouldStop = () => false }) {
  const t0 = now();
  const state = groups.map((g) => ({
    g, times: new Array(g.candidates.length).fill(null), best: g.winner ?? 0, done: Boolean(g.done),
  }));
  const todo = state.filter((s) => !s.done && s.g.candidates.length > 1);
  const startOf = (s) => Math.max(1, s.g.tried ?? 1);
  const total = todo.reduce((n, s) => n + 1 + s.g.candidates.length - startOf(s) - (s.best >= startOf(s) ? 1 : 0), 0);
  let measured = 0;
  const overBudget = () => now() - t0 >= budgetMs || shouldStop();
  const cost = (s, i) => (s.times[i] ?? 0) * s.g.steps.length;
  const summary = () => {
    const timed = state.filter((s) => s.times[0] !== null);
    return {
      elapsedMs: now() - t0,
      measured,
      total,
      defaultMs: timed.reduce((a, s) => a + cost(s, 0), 0),
      bestMs: timed.reduce((a, s) => a + cost(s, s.times[s.best] !== null ? s.best : 0), 0),
    };
  };
  const progress = () => {
    if (!onProgress) return;
    const s = summary();
    onProgress({ done: measured, total, bestSoFar: { ms: s.bestMs, defaultMs: s.defaultMs }, elapsedMs: s.elapsedMs });
  };
  const time = async (s, i, counted = true) => {
    await pause();
    try {
      s.times[i] = await measure(s.g, s.g.candidates[i]);
    } catch (e) {
      // A candidate that fails to compile or run is never picked; the session keeps what it had.
      s.times[i] = Infinity;
      s.errors = [...(s.errors ?? []), `${i}: ${e.message}`];
    }
    if (counted) {
      measured += 1;
      progress();
    }
  };

  for (const s of state) if (s.best !== 0) await apply(s.g, s.g.candidates[s.best]);
  let stopped = false;
  // Warm up first (tier-up, a page that just loaded): timings taken in the first second drift.
  if (todo.length && warmupMs > 0) {
    const w0 = now();
    while (now() - w0 < warmupMs && !overBudget()) {
      await pause();
      try {
        await measure(todo[0].g, todo[0].g.candidates[todo[0].best]);
      } catch {
        break;
      }
    }
  }
  // The baseline of each group is what runs now: the default, or a cached winner of an unfinished search.
  for (const s of todo) {
    if (overBudget()) { stopped = true; break; }
    await time(s, s.best);
  }
  todo.sort((a, b) => cost(b, b.best) - cost(a, a.best));
  for (const s of todo) {
    if (stopped) break;
    const base = s.best;
    let best = base;
    let i = startOf(s);
    for (; i < s.g.candidates.length; i++) {
      if (i === base) continue;
      if (overBudget()) { stopped = true; break; }
      await time(s, i);
      if (s.times[i] < s.times[best] * MARGIN) best = i;
    }
    s.tried = i;
    if (best !== base) {
      // Confirm in alternating pairs (base, best, base, best, …): each search timing was taken at a
      // different moment, and a drifting machine (a page that just loaded) would otherwise crown
      // whichever candidate happened to be timed last. The medians of the pairs decide.
      const a = [];
      const b = [];
      for (let r = 0; r < CONFIRM_PAIRS; r++) {
        await time(s, base, false);
        a.push(s.times[base]);
        await time(s, best, false);
        b.push(s.times[best]);
      }
      const med = (v) => [...v].sort((x, y) => x - y)[v.length >> 1];
      s.times[base] = med(a);
      s.times[best] = med(b);
      if (s.times[best] >= s.times[base] * MARGIN) best = base;
    }
    if (best !== s.best) await apply(s.g, s.g.candidates[best]);
    s.best = best;
    s.done = !stopped;
  }
  const out = summary();
  return {
    ...out,
    complete: state.every((s) => s.done || s.g.candidates.length <= 1),
    groups: state.map((s) => ({ key: s.g.key, winner: s.best, done: s.done || s.g.candidates.length <= 1, tried: s.tried ?? s.g.tried ?? 1,
      times: s.times, ...(s.errors ? { errors: s.errors } : {}) })),
  };
}
