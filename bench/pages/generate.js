// Generates with a decoder bundle: Session.generate's tokens stream into self.nnjitProgress (the
// driver polls it and prints them); the result carries the tokens, the stats and optionally each
// step's logits (base64 of float32 rows).
import { Session } from '/nnjit/index.js';
import { loadTokenizer } from '/nnjit/tokenizer.js';
import { expose, toBase64 } from './harness.js';

async function generate({ bundleUrl, prompt, text = null, maxNewTokens = 32, temperature = 0, topK = 0, topP = 1, seed = 0,
  stop, threads = 1, returnLogits = false, repeat = 1, backend = 'wasm', profileDecode = 0, loraSwitch = 'auto' }) {
  // With `text`, the page tokenises it (and detokenises the result) with the bundle's tokenizer.
  const tokenizer = text === null ? null : await loadTokenizer(bundleUrl);
  if (tokenizer) prompt = tokenizer.encode(text);
  const t0 = performance.now();
  const session = await Session.create(bundleUrl, { backend, threads, tune: false });
  const createMs = performance.now() - t0;
  try {
    const runs = [];
    let tokens = [];
    for (let r = 0; r < repeat; r++) {
      tokens = [];
      const options = { maxNewTokens, temperature, topK, topP, seed, returnLogits, loraSwitch, ...(stop ? { stop } : {}) };
      for await (const t of session.generate(prompt, options)) {
        tokens.push(t);
        self.nnjitProgress = { tokens: [...tokens], run: r };
      }
      runs.push(session.lastGenerateStats);
    }
    // Per-step times of the one-token plan at the position after this generation.
    const dec = session.info.decoder;
    const profile = profileDecode > 0 ? await session.profile({
      [dec.token_input]: new BigInt64Array([11n]), [dec.position_input]: new BigInt64Array([BigInt(prompt.length + tokens.length)]),
    }, { runs: profileDecode, plan: 'decode' }) : null;
    const last = runs[runs.length - 1];
    const logits = last.logits ? await toBase64(new Blob(last.logits.map((a) => a.buffer))) : null;
    for (const s of runs) delete s.logits;
    return {
      tokens, runs, createMs, info: session.info, logits, profile, crossOriginIsolated: self.crossOriginIsolated,
      ...(tokenizer ? { promptIds: prompt, text: tokenizer.decode(tokens) } : {}),
    };
  } finally {
    await session.release();
  }
}

expose(generate);
