// Tuning results kept in IndexedDB, so a second page load on the same device tunes nothing.
//
// Key: the bundle's kernel set (a digest of every kernel's sha256 and every step's candidate
// list: another compile of another model never matches) + browser + backend + device
// (GPU adapter, or the CPU's hardwareConcurrency) + threads. The value lists, per step group, the
// index of the winning candidate and whether that group's search finished. An entry that does not
// fit the bundle (corrupt, or written by another version) is deleted and the session tunes afresh.

const DB = 'nnjit-tuning';
const STORE = 'winners';
const FORMAT = 1;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

let dbPromise = null;
function open() {
  if (!globalThis.indexedDB) return Promise.resolve(null);
  dbPromise ??= new Promise((resolve) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    // Private modes and some embedders refuse IndexedDB: tuning still works, it is just not kept.
    req.onerror = () => resolve(null);
    req.onblocked = () => resolve(null);
  });
  return dbPromise;
}

async function digest(text) {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The cache key for `manifest` run on `backend` with `device` (adapter description or core count) and `threads`. */
export async function cacheKey(manifest, { backend, device, threads }) {
  const kernels = manifest.kernels.map((k) => [k.id, k.sha256, k.relaxed?.sha256 ?? null]);
  const steps = manifest.steps.map((s) => s.candidates ?? { wasm: [s.kernel] });
  const bundle = await digest(JSON.stringify({ kernels, steps }));
  const browser = globalThis.navigator?.userAgent ?? 'unknown';
  return JSON.stringify({ bundle, browser, backend, device, threads });
}

/**
 * Cached choices for `groups` ([{key, candidates}]) under `key`: a Map group key → {winner, done},
 * or null when there is none. `dropped` is set to why an entry was rejected (and it is deleted).
 */
export async function loadWinners(key, groups) {
  const db = await open();
  if (!db) return { winners: null, dropped: null };
  let value;
  try {
    value = await request(db.transaction(STORE).objectStore(STORE).get(key));
  } catch (e) {
    return { winners: null, dropped: `cannot read the tuning cache (${e.message})` };
  }
  if (value === undefined) return { winners: null, dropped: null };
  const why = invalid(value, groups);
  if (why) {
    await forget(key);
    return { winners: null, dropped: why };
  }
  return { winners: new Map(value.groups.map((g) => [g.key, { winner: g.winner, done: g.done, tried: g.tried }])), dropped: null };
}

function invalid(value, groups) {
  if (!value || typeof value !== 'object' || value.format !== FORMAT || !Array.isArray(value.groups)) {
    return 'the cached entry is not a tuning record of this version';
  }
  const sizes = new Map(groups.map((g) => [g.key, g.candidates.length]));
  for (const g of value.groups) {
    if (!g || typeof g !== 'object' || !sizes.has(g.key)) return `the cached entry names an unknown step group ${JSON.stringify(g?.key)}`;
    if (!Number.isInteger(g.winner) || g.winner < 0 || g.winner >= sizes.get(g.key)) {
      return `the cached winner ${JSON.stringify(g.winner)} of group ${g.key} is not one of its ${sizes.get(g.key)} candidates`;
    }
    if (typeof g.done !== 'boolean') return `the cached entry of group ${g.key} lacks "done"`;
    if (!Number.isInteger(g.tried) || g.tried < 1 || g.tried > sizes.get(g.key)) return `the cached entry of group ${g.key} has a bad "tried" ${JSON.stringify(g.tried)}`;
  }
  return null;
}

/** Store the tuner's result (see tuner.js) under `key`. Failures to write are reported, never thrown. */
export async function saveWinners(key, result) {
  const db = await open();
  if (!db) return false;
  const value = {
    format: FORMAT,
    savedAt: new Date().toISOString(),
    defaultMs: result.defaultMs,
    bestMs: result.bestMs,
    groups: result.groups.map((g) => ({ key: g.key, winner: g.winner, done: g.done, tried: g.tried })),
  };
  try {
    const tx = db.transaction(STORE, 'readwrite');
    tx.objectStore(STORE).put(value, key);
    await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
    return true;
  } catch (e) {
    console.warn(`nnjit: could not save the tuning results (${e.message})`);
    return false;
  }
}

export async function forget(key) {
  const db = await open();
  if (!db) return;
  try {
    await request(db.transaction(STORE, 'readwrite').objectStore(STORE).delete(key));
  } catch {
    // Nothing to lose: the entry is rewritten after the next tuning.
  }
}

/** Test hook and user escape hatch: write `value` under `key` as is (e.g. to check corrupt entries are dropped). */
export async function putRaw(key, value) {
  const db = await open();
  const tx = db.transaction(STORE, 'readwrite');
  tx.objectStore(STORE).put(value, key);
  await new Promise((resolve, reject) => { tx.oncomplete = resolve; tx.onerror = () => reject(tx.error); });
}

/** Every key in the cache (tests and `nnjit` diagnostics). */
export async function keys() {
  const db = await open();
  if (!db) return [];
  return request(db.transaction(STORE).objectStore(STORE).getAllKeys());
}
