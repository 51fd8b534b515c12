// The tuner against planted candidates with known costs (no browser, no timing noise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tune } from '../../web_runtime/tuner.js';

const noPause = async () => {};

function planted(costs, steps = [0]) {
  return { key: `g${costs.join('/')}`, candidates: costs.map((ms, i) => ({ id: i, ms })), steps };
}

function harness(groups, { budgetMs = 1e9, clockPerMeasure = 0 } = {}) {
  let clock = 0;
  const applied = new Map();
  const measured = [];
  return {
    applied,
    measured,
    run: () => tune({
      groups,
      budgetMs,
      now: () => clock,
      warmupMs: 0,
      pause: noPause,
      measure: async (g, c) => {
        measured.push([g.key, c.id]);
        clock += clockPerMeasure;
        if (c.ms === 'throws') throw new Error('does not compile');
        return c.ms;
      },
      apply: async (g, c) => applied.set(g.key, c.id),
    }),
  };
}

test('picks the fastest planted candidate of every group', async () => {
  const groups = [planted([5, 3, 4, 2.5, 6]), planted([1, 1.5, 0.9999]), planted([2, 1])];
  const h = harness(groups);
  const r = await h.run();
  assert.equal(r.complete, true);
  assert.deepEqual(r.groups.map((g) => g.winner), [3, 0, 1]);
  // Within the 2% margin the default stays: 0.9999 vs 1 is noise, not a win.
  assert.equal(h.applied.get(groups[0].key), 3);
  assert.equal(h.applied.has(groups[1].key), false);
  assert.equal(r.defaultMs, 5 + 1 + 2);
  assert.equal(r.bestMs, 2.5 + 1 + 1);
  assert.equal(r.measured, r.total);
  assert.equal(r.total, 5 + 3 + 2);
});

test('the costliest group (ms x steps that share it) is tuned first', async () => {
  const small = planted([1, 0.5], [0]);
  const big = planted([3, 2], [1, 2, 3]);
  const h = harness([small, big]);
  await h.run();
  // Defaults of both first, then the big group's alternatives before the small one's.
  const afterDefaults = h.measured.slice(2).map(([k]) => k);
  assert.equal(afterDefaults[0], big.key);
});

test('a budget stops the search and keeps the best found so far', async () => {
  const groups = [planted([5, 4, 1, 0.5])];
  const h = harness(groups, { budgetMs: 2.5, clockPerMeasure: 1 });
  const r = await h.run();
  assert.equal(r.complete, false);
  assert.equal(r.groups[0].done, false);
  // measured: default (t=1), candidate 1 (t=2), candidate 2 (t=3) — then over budget.
  assert.equal(r.groups[0].winner, 2);
  assert.equal(h.applied.get(groups[0].key), 2);
});

test('a candidate that fails is skipped, never picked', async () => {
  const groups = [planted([5, 'throws', 4])];
  const r = await harness(groups).run();
  assert.equal(r.groups[0].winner, 2);
  assert.match(r.groups[0].errors[0], /does not compile/);
});

test('cached choices are applied and finished groups are not measured again', async () => {
  const done = { ...planted([5, 1]), winner: 1, done: true };
  const open = { ...planted([3, 2]), winner: 0, done: false };
  const h = harness([done, open]);
  const r = await h.run();
  assert.equal(h.applied.get(done.key), 1);
  assert.ok(h.measured.every(([k]) => k === open.key));
  assert.equal(r.groups[1].winner, 1);
  assert.equal(r.complete, true);
});

test('groups with one candidate cost no measurement', async () => {
  const h = harness([planted([1]), planted([2])]);
  const r = await h.run();
  assert.equal(h.measured.length, 0);
  assert.equal(r.total, 0);
  assert.equal(r.complete, true);
});

test('an unfinished search resumes where it stopped, against the cached winner', async () => {
  const g = { ...planted([5, 4, 1, 3, 0.5, 2]), winner: 2, done: false, tried: 4 };
  const h = harness([g]);
  const r = await h.run();
  // The cached winner is applied, timed as the baseline, then candidates 4 and 5 only.
  assert.deepEqual(h.measured.slice(0, 3).map(([, id]) => id), [2, 4, 5]);
  assert.equal(r.total, 3);
  assert.equal(r.groups[0].winner, 4);
  assert.equal(r.groups[0].tried, 6);
  assert.equal(r.complete, true);
});

test('a drifting machine does not crown the candidate timed last', async () => {
  // Every candidate costs the same, but each measurement reads 1% faster than the one before (a
  // page that is still warming up): the search sees later candidates as faster; the alternating
  // confirmation must not be fooled.
  let calls = 0;
  const g = planted([4, 4, 4, 4, 4, 4, 4, 4]);
  const r = await tune({
    groups: [g], warmupMs: 0, now: () => 0, pause: async () => {},
    measure: async (grp, c) => c.ms * 0.99 ** calls++,
    apply: async () => {},
  });
  assert.equal(r.groups[0].winner, 0);
});
