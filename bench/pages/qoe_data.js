// Real data on the QoE page (docs/metrics.md §5): each sample of a dataset run alone, and a 30 fps
// stream of those samples as frames. Like the rest of the page it records raw results only (outputs,
// finish times); bench/qoe_metrics.py scores them.
import { ARRAYS, toBase64 } from './harness.js';

const now = () => performance.now();

/** Fetch dataset.bin and split it into samples: [{name, dtype, shape, data}] per sample. */
export async function loadSamples(url, specs, n) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`dataset: HTTP ${res.status} at ${url}`);
  const buf = await res.arrayBuffer();
  return Array.from({ length: n }, (_, i) => specs.map(({ name, dtype, shape, offset, bytes }) => {
    const Arr = ARRAYS[dtype];
    const each = bytes / n / Arr.BYTES_PER_ELEMENT;
    return { name, dtype, shape: shape.slice(1), data: new Arr(buf, offset + i * each * Arr.BYTES_PER_ELEMENT, each) };
  }));
}

/** Every sample through `runOn`; the `output` of each, concatenated, as base64 of its dtype. */
export async function runDataset(runOn, samples, output) {
  const parts = [];
  let dtype = null;
  let dims = null;
  for (const s of samples) {
    const out = (await runOn(s))[output];
    if (!out) throw new Error(`dataset: the runtime returned no output '${output}'`);
    parts.push(out.data);
    ({ dtype, dims } = out);
  }
  const Arr = parts[0].constructor;
  const all = new Arr(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, at), (at += p.length);
  return { dtype, dims: [samples.length, ...dims], b64: await toBase64(all) };
}

function argmax(data) {
  let best = 0;
  for (let i = 1; i < data.length; i++) if (data[i] > data[best]) best = i;
  return best;
}

/**
 * Frames due at t0 + i·1000/fps, frame i showing sample ⌊i/hold⌋ mod n. Whenever inference is free
 * it starts on the latest frame already due (skipped frames get none); each run's frame, finish time
 * (ms after t0) and top-1 are recorded.
 */
export async function runStream(runOn, samples, { fps, frames, hold, output }) {
  const period = 1000 / fps;
  const runs = [];
  const t0 = now();
  let last = -1;
  for (;;) {
    const due = Math.floor((now() - t0) / period);
    if (due >= frames) break;
    if (due > last) {
      last = due;
      const out = (await runOn(samples[Math.floor(due / hold) % samples.length]))[output];
      runs.push({ frame: due, end: now() - t0, top1: argmax(out.data) });
    } else {
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + (due + 1) * period - now())));
    }
  }
  return { fps, frames, hold, runs };
}
