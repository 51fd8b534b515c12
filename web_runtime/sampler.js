// Picking the next token from a row of logits, in the worker, once per generated token. The
// vocabulary is large (50k–262k) and the decode step small, so nothing here sorts the whole
// vocabulary: top-k keeps a k-sized heap, top-p sorts only the tokens that can reach the nucleus,
// and plain temperature sampling draws by one cumulative scan.
import { BackendError, InputError } from './errors.js';

/** mulberry32: a small seeded generator, so that a seed reproduces a sampled text. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Rank order: higher logit first, the lower id first among equals (as the native sampler's stable sort).
const ranksBelow = (logits, a, b) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);

/** The k best ids (unordered) through a min-heap whose root is the worst id kept. */
function topKIds(logits, k) {
  const heap = [];
  const down = (i) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && ranksBelow(logits, heap[l], heap[m])) m = l;
      if (r < heap.length && ranksBelow(logits, heap[r], heap[m])) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let id = 0; id < logits.length; id++) {
    if (Number.isNaN(logits[id])) continue;
    if (heap.length < k) {
      heap.push(id);
      for (let i = heap.length - 1; i > 0;) {
        const p = (i - 1) >> 1;
        if (!ranksBelow(logits, heap[i], heap[p])) break;
        [heap[i], heap[p]] = [heap[p], heap[i]];
        i = p;
      }
    } else if (ranksBelow(logits, heap[0], id)) {
      heap[0] = id;
      down(0);
    }
  }
  return heap;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const ID_BITS = 2 ** 21;

/** ids sorted by rank, in place. Long lists sort as packed numbers (a float32 logit's bits made
 * order-preserving, times 2^21, plus the reversed id: exact in a double up to 2^21 ids) with the
 * engine's native numeric sort — a comparator sort of 40k ids took ~25 ms, longer than a decode step. */
function sortByRank(ids, logits) {
  if (ids.length < 512 || logits.length > ID_BITS) return ids.sort((a, b) => logits[b] - logits[a] || a - b);
  const packed = new Float64Array(ids.length);
  for (let j = 0; j < ids.length; j++) {
    f32[0] = logits[ids[j]];
    const bits = u32[0];
    const key = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
    packed[j] = key * ID_BITS + (ID_BITS - 1 - ids[j]);
  }
  packed.sort();
  for (let j = 0; j < ids.length; j++) ids[j] = ID_BITS - 1 - (packed[ids.length - 1 - j] % ID_BITS);
  return ids;
}

/** (logits) → token: argmax when temperature is 0, else temperature / top-k / top-p sampling. */
export function sampler({ temperature = 0, topK = 0, topP = 1, seed = 0 } = {}) {
  if (!(temperature >= 0)) throw new InputError(`temperature: expected a number >= 0, got ${JSON.stringify(temperature)}`);
  if (!Number.isInteger(topK) || topK < 0) throw new InputError(`topK: expected an integer >= 0, got ${JSON.stringify(topK)}`);
  if (!(topP > 0 && topP <= 1)) throw new InputError(`topP: expected a number in (0, 1], got ${JSON.stringify(topP)}`);
  const random = rng(seed);
  return (logits) => {
    let best = -1;
    for (let i = 0; i < logits.length; i++) if (best < 0 ? !Number.isNaN(logits[i]) : logits[i] > logits[best]) best = i;
    const max = best < 0 ? NaN : logits[best];
    if (!Number.isFinite(max)) throw new BackendError(`sampling: the model's logits have no finite maximum (${max})`);
    if (temperature === 0) return best;
    if (topK > 0 && topK < logits.length) {
      const ids = sortByRank(topKIds(logits, topK), logits);
      const w = ids.map((id) => Math.exp((logits[id] - max) / temperature));
      const keep = topP < 1 ? nucleusLength(w, topP * w.reduce((a, b) => a + b, 0)) : ids.length;
      return ids[drawIndex(w, keep, random)];
    }
    const w = new Float64Array(logits.length);
    let total = 0;
    for (let i = 0; i < logits.length; i++) total += (w[i] = Number.isNaN(logits[i]) ? 0 : Math.exp((logits[i] - max) / temperature));
    // Plain temperature sampling: any fixed order draws each id with its probability, so id order.
    if (topP === 1) return drawIndex(w, w.length, random);
    // The nucleus is the shortest ranked prefix holding topP of the mass. Every id of weight ≥ t ranks
    // before every id below t, so once the ids at or above t hold topP of the mass the nucleus lies among
    // them and only they are sorted (t falls by 2^-10 until that holds; at t = 0 it holds for all ids).
    for (let t = 2 ** -10; ; t *= 2 ** -10) {
      const ids = [];
      let mass = 0;
      for (let i = 0; i < w.length; i++) if (w[i] >= t) { ids.push(i); mass += w[i]; }
      if (mass >= topP * total) {
        sortByRank(ids, logits);
        const wi = ids.map((id) => w[id]);
        return ids[drawIndex(wi, nucleusLength(wi, topP * total), random)];
      }
    }
  };
}

/** How many leading weights reach `need`. */
function nucleusLength(w, need) {
  let acc = 0;
  for (let j = 0; j < w.length; j++) if ((acc += w[j]) >= need) return j + 1;
  return w.length;
}

/** An index among the first `n` weights, drawn in proportion to them. */
function drawIndex(w, n, random) {
  let total = 0;
  for (let j = 0; j < n; j++) total += w[j];
  let r = random() * total, last = 0;
  for (let j = 0; j < n; j++) {
    if (w[j] > 0) last = j;
    if ((r -= w[j]) <= 0 && w[j] > 0) return j;
  }
  return last;
}
