// Token generation over a decoder bundle (docs/decoders.md), run inside the session's worker: the
// same rules as the compiler's native generator (compiler/generate.py). The prompt is prefilled in
// chunks of `prefill_len` tokens right-aligned in the prefill plan (free slots at position -1, never
// cached, never read; a last chunk of at most prefill_len / 16 tokens as single decode steps), then
// the one-token decode plan runs once per new token.
import { InputError } from './errors.js';

/** Prompt ids as numbers, or InputError naming what is wrong. */
export function checkPrompt(ids, dec, maxNewTokens) {
  if (!Array.isArray(ids) && !ArrayBuffer.isView(ids)) throw new InputError(`prompt: expected an array of token ids, got ${typeof ids}`);
  const out = Array.from(ids, (v) => (typeof v === 'bigint' ? Number(v) : v));
  if (!out.length) throw new InputError('prompt: expected a non-empty list of token ids');
  const bad = out.find((v) => !Number.isInteger(v));
  if (bad !== undefined) throw new InputError(`prompt: expected integer token ids, got ${JSON.stringify(bad)}`);
  const oob = out.find((v) => v < 0 || v >= dec.vocab);
  if (oob !== undefined) throw new InputError(`prompt: token id ${oob} is outside the vocabulary [0, ${dec.vocab})`);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new InputError(`maxNewTokens: expected an integer >= 1, got ${JSON.stringify(maxNewTokens)}`);
  if (out.length + maxNewTokens > dec.max_context) {
    throw new InputError(`prompt: ${out.length} tokens + maxNewTokens ${maxNewTokens} exceed the bundle's max context of ${dec.max_context} tokens (compile with a larger --max-context)`);
  }
  return out;
}

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

/** (logits) → token: argmax when temperature is 0, else temperature / top-k / top-p sampling. */
export function sampler({ temperature = 0, topK = 0, topP = 1, seed = 0 } = {}) {
  if (!(temperature >= 0)) throw new InputError(`temperature: expected a number >= 0, got ${JSON.stringify(temperature)}`);
  if (!Number.isInteger(topK) || topK < 0) throw new InputError(`topK: expected an integer >= 0, got ${JSON.stringify(topK)}`);
  if (!(topP > 0 && topP <= 1)) throw new InputError(`topP: expected a number in (0, 1], got ${JSON.stringify(topP)}`);
  const random = rng(seed);
  return (logits) => {
    if (temperature === 0) {
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      return best;
    }
    let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0) order = order.slice(0, topK);
    const top = logits[order[0]];
    let p = order.map((i) => Math.exp((logits[i] - top) / temperature));
    let sum = p.reduce((x, y) => x + y, 0);
    p = p.map((x) => x / sum);
    if (topP < 1) {
      let acc = 0;
      let keep = p.length;
      for (let i = 0; i < p.length; i++) {
        acc += p[i];
        if (acc >= topP) { keep = i + 1; break; }
      }
      order = order.slice(0, keep);
      sum = p.slice(0, keep).reduce((x, y) => x + y, 0);
      p = p.slice(0, keep).map((x) => x / sum);
    }
    let r = random();
    for (let i = 0; i < p.length; i++) {
      r -= p[i];
      if (r <= 0) return order[i];
    }
    return order[order.length - 1];
  };
}

// A prompt chunk of at most prefill_len / SMALL_CHUNK tokens runs as decode steps (compiler/generate.py).
const SMALL_CHUNK = 16;

const ids64 = (list) => new BigInt64Array(list.map((v) => BigInt(v))).buffer;

/**
 * Run a generation on `backend` (run(feeds, sinks, variant), sync on wasm, async on webgpu); `onToken(token, index)` sees each
 * token as it is picked; options.returnLogits adds each step's logits (Float32Array) to the result. Resolves to {tokens, promptTokens, prefillMs, decodeMs, prefillTokensPerS,
 * decodeTokensPerS}.
 */
export async function generate(backend, dec, promptIds, options = {}, onToken = () => {}) {
  const { maxNewTokens = 32, stop = dec.eos_token_id == null ? [] : [dec.eos_token_id] } = options;
  const prompt = checkPrompt(promptIds, dec, maxNewTokens);
  const pick = sampler(options);
  const stopSet = new Set(stop);
  const S = dec.prefill_len;
  const lastRow = (out) => {
    const all = new Float32Array(out[dec.logits_output]);
    return all.subarray(all.length - dec.vocab);
  };
  const t0 = performance.now();
  let logits;
  for (let c = 0; c < prompt.length; c += S) {
    const chunk = prompt.slice(c, c + S);
    if (chunk.length <= Math.floor(S / SMALL_CHUNK)) {
      for (let i = 0; i < chunk.length; i++) {
        logits = lastRow(await backend.run({ [dec.token_input]: ids64([chunk[i]]), [dec.position_input]: ids64([c + i]) }, null, 'decode'));
      }
      break;
    }
    const pad = S - chunk.length;
    const tokens = [...new Array(pad).fill(0), ...chunk];
    const positions = [...new Array(pad).fill(-1), ...chunk.map((_, i) => c + i)];
    logits = lastRow(await backend.run({ [dec.token_input]: ids64(tokens), [dec.position_input]: ids64(positions) }));
  }
  const t1 = performance.now();
  const tokens = [];
  const steps = options.returnLogits ? [] : null;
  for (let i = 0; i < maxNewTokens; i++) {
    steps?.push(Float32Array.from(logits));
    const tok = pick(logits);
    tokens.push(tok);
    onToken(tok, i);
    if (stopSet.has(tok) || i === maxNewTokens - 1) break;
    const feeds = { [dec.token_input]: ids64([tok]), [dec.position_input]: ids64([prompt.length + i]) };
    logits = lastRow(await backend.run(feeds, null, 'decode'));
  }
  const t2 = performance.now();
  return {
    tokens,
    promptTokens: prompt.length,
    prefillMs: t1 - t0,
    decodeMs: t2 - t1,
    prefillTokensPerS: (prompt.length / (t1 - t0)) * 1000,
    decodeTokensPerS: tokens.length > 1 ? ((tokens.length - 1) / (t2 - t1)) * 1000 : null,
    ...(steps ? { logits: steps } : {}),
  };
}
