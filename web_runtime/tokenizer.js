// The tokenizer a decoder bundle ships (tokenizer.json, checked against the manifest's sha256),
// through @huggingface/tokenizers (a maintained pure-JS implementation of the `tokenizers` format).
// A separate entry point ('nnjit-web/tokenizer') so that pages without text in and out never load it.
//
//   import { loadTokenizer } from 'nnjit-web/tokenizer';
//   const tok = await loadTokenizer('/bundles/gpt2/');
//   for await (const id of session.generate(tok.encode('Hello'))) out.textContent += tok.decode([id]);
import { Tokenizer } from '@huggingface/tokenizers';
import { fetchVerified } from './bundle.js';
import { BundleError } from './errors.js';

/** {encode(text, {bos = true}) → ids, decode(ids) → text, bosTokenId, eosTokenId} for the bundle at `url`. */
export async function loadTokenizer(url) {
  const base = new URL(url, globalThis.location?.href);
  const manifestUrl = base.pathname.endsWith('.json') ? base : new URL('manifest.json', base.href.endsWith('/') ? base : `${base.href}/`);
  const res = await fetch(manifestUrl);
  if (!res.ok) throw new BundleError(`${manifestUrl}: HTTP ${res.status}`);
  const manifest = await res.json();
  const spec = manifest?.decoder?.tokenizer;
  if (!spec) throw new BundleError(`${manifestUrl}: the bundle ships no tokenizer (compile a decoder with --tokenizer tokenizer.json)`);
  const bytes = await fetchVerified(new URL('.', manifestUrl).href, spec.file, spec.sha256);
  let json;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new BundleError(`${spec.file}: not valid JSON (${e.message})`);
  }
  const tok = new Tokenizer(json, {});
  const bos = manifest.decoder.bos_token_id ?? null;
  return {
    bosTokenId: bos,
    eosTokenId: manifest.decoder.eos_token_id ?? null,
    encode: (text, { bos: addBos = true } = {}) => [...(addBos && bos !== null ? [bos] : []), ...tok.encode(text, { add_special_tokens: false }).ids],
    decode: (ids) => tok.decode(Array.from(ids), { skip_special_tokens: false }),
  };
}
