// The page-side token sampler: argmax, temperature / top-k / top-p draws against the exact softmax.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampler } from '../../web_runtime/sampler.js';
import { BackendError, InputError } from '../../web_runtime/errors.js';

function frequencies(pick, logits, draws) {
  const counts = new Map();
  for (let i = 0; i < draws; i++) {
    const t = pick(logits);
    counts.set(t, (counts.get(t) || 0) + 1);
  }
  return counts;
}

function softmax(xs, temperature) {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp((x - m) / temperature));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

test('temperature 0 is argmax (first of ties)', () => {
  const logits = new Float32Array([0.5, 2, -1, 2, 1.5]);
  assert.equal(sampler()(logits), 1);
});

test('draws follow the softmax of a large vocabulary whose tail is far below the best', () => {
  const logits = new Float32Array(50257).fill(-1000);
  logits[7] = 3; logits[130] = 2.2; logits[37] = 1; logits[50256] = 2.9;
  const pick = sampler({ temperature: 0.8, seed: 11 });
  // 4000 draws (each scans all 50,257 logits): a share's standard error is at most 0.008, the bound 3 of them.
  const n = 4000;
  const counts = frequencies(pick, logits, n);
  assert.deepEqual([...counts.keys()].sort((a, b) => a - b), [7, 37, 130, 50256]);
  const p = softmax([3, 2.2, 1, 2.9], 0.8);
  [7, 130, 37, 50256].forEach((tok, i) => {
    assert.ok(Math.abs(counts.get(tok) / n - p[i]) < 0.025, `token ${tok}: ${counts.get(tok) / n} vs ${p[i]}`);
  });
});

test('a flat distribution keeps every token', () => {
  const logits = new Float32Array(37).map((_, i) => (i % 3) * 0.01);
  const counts = frequencies(sampler({ temperature: 1, seed: 3 }), logits, 20000);
  assert.equal(counts.size, 37);
});

test('top-k 1 and a tiny top-p both return the best token', () => {
  const logits = new Float32Array([0.1, 0.3, 0.2, 0.29]);
  assert.equal(frequencies(sampler({ temperature: 2, topK: 1, seed: 1 }), logits, 200).get(1), 200);
  assert.equal(frequencies(sampler({ temperature: 2, topP: 0.01, seed: 1 }), logits, 200).get(1), 200);
  const two = frequencies(sampler({ temperature: 2, topK: 2, seed: 5 }), logits, 2000);
  assert.deepEqual([...two.keys()].sort(), [1, 3]);
});

test('bad options are InputErrors and logits without a finite maximum a BackendError', () => {
  assert.throws(() => sampler({ temperature: -1 }), InputError);
  assert.throws(() => sampler({ topK: 1.5 }), InputError);
  assert.throws(() => sampler({ topP: 0 }), InputError);
  assert.throws(() => sampler({ temperature: 1 })(new Float32Array([NaN, NaN])), BackendError);
});

test('a wide nucleus (sorted as packed numbers) keeps the ranked prefix holding top-p of the mass', () => {
  const n = 5000;
  const logits = new Float32Array(n).map((_, i) => ((i * 7919) % n) / n);  // a permutation of a ramp
  logits[4999] = logits[0];  // a tie: the lower id ranks first
  const topP = 0.5;
  const counts = frequencies(sampler({ temperature: 0.25, topP, seed: 9 }), logits, 4000);
  const ranked = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  const w = ranked.map((i) => Math.exp((logits[i] - logits[ranked[0]]) / 0.25));
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0, keep = 0;
  while (acc < topP * total) acc += w[keep++];
  const nucleus = new Set(ranked.slice(0, keep));
  assert.ok(keep > 600, `nucleus of ${keep} ids`);
  for (const t of counts.keys()) assert.ok(nucleus.has(t), `token ${t} is outside the nucleus`);
  assert.ok(counts.size > keep * 0.6, `${counts.size} distinct of ${keep}`);
});
