// Token generation over a decoder bundle (docs/decoders.md), run inside the session's worker: the
// same rules as the compiler's native generator (compiler/generate.py). The prompt is prefilled in
// chunks of `prefill_len` tokens right-aligned in the prefill plan (free slots at position -1, never
// cached, never read; a last chunk of at most prefill_len / 16 tokens as single decode steps), then
// the one-token decode plan runs once per new token.
import { InputError } from './errors.js';
import { sampler } from './sampler.js';

export { sampler };

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

// A prompt chunk of at most prefill_len / SMALL_CHUNK tokens runs as decode steps (compiler/generate.py).
const SMALL_CHUNK = 16;

const ids64 = (list) => new BigInt64Array(list.map((v) => BigInt(v))).buffer;

/**
 * Run a generation on `backend` (run(feeds, sinks, variant), sync on wasm, async on webgpu); `onToken(token, index)` sees each
 * token as it is picked; options.returnLogits adds each step's logits (Float32Array) to the result. Resolves to {tokens, promptTokens, prefillMs, decodeMs, prefillTokensPerS,
 * decodeTokensPerS}.
 */
export async function generate(backend, dec, promptIds, options = {}, onToken = () => {}) {
  const { maxNewTokens = 32, stop = dec.eos_token_id == null ? [] : [dec.eos_token_id], decodeVariant = 'decode' } = options;
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
        logits = lastRow(await backend.run({ [dec.token_input]: ids64([chunk[i]]), [dec.position_input]: ids64([c + i]) }, null, decodeVariant));
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
    logits = lastRow(await backend.run(feeds, null, decodeVariant));
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
