"""The committee table's browser half (`make bench-moe`): the same configurations in headless Chromium
through `Session.create(url, {moe})` (wasm, 1 thread, in the worker): held-out accuracy, wasm memory,
swaps, and latency per token and per batch as the page sees it (`session.run`, worker round trip
included)."""
from __future__ import annotations

import numpy as np

PAGE_JS = """async ({ url, xs, ys, options }) => {
  const nn = await import('/nnjit/index.js');
  const s = await nn.Session.create(url, options);
  for (let i = 0; i < Math.min(3, xs.length); i++) await s.run({ input: new Float32Array(xs[i]) });
  const swaps0 = s.lastRunStats.moe?.swaps ?? 0;
  const times = [];
  let correct = 0;
  let n = 0;
  for (let rep = 0; rep < options.reps; rep++) {
    for (let i = 0; i < xs.length; i++) {
      const t0 = performance.now();
      const out = await s.run({ input: new Float32Array(xs[i]) });
      times.push(performance.now() - t0);
      if (rep) continue;
      const d = out.logits.data;
      const C = out.logits.dims[1];
      for (let r = 0; r < d.length / C; r++) {
        let best = 0;
        for (let c = 1; c < C; c++) if (d[r * C + c] > d[r * C + best]) best = c;
        correct += best === ys[n++] ? 1 : 0;
      }
    }
  }
  const swaps = (s.lastRunStats.moe?.swaps ?? 0) - swaps0;
  const info = s.info;
  await s.release();
  times.sort((a, b) => a - b);
  return { acc: correct / n, ms: times[times.length >> 1], swaps, rows: n, mem: info.moe?.wasmMemoryBytes ?? null };
}"""


def run(bundles: dict, x_te, y_te, plan, configs, batch: int, limit: int) -> list[dict]:
    """bundles: {1: dir, batch: dir}; configs: [(label, resident, policy, moe options or None)]."""
    from nnjit.browsers.page_runner import BrowserHarness
    rows = []
    with BrowserHarness(timeout_s=600) as h:
        page = h.open_page("run.html")
        try:
            for label, resident, policy, moe in configs:
                row = {"config": label, "resident": resident, "policy": policy}
                for b, key in ((1, "token"), (batch, "batch")):
                    n = min(len(x_te), limit) // b * b
                    xs = [x_te[i:i + b].ravel().tolist() for i in range(0, n, b)]
                    opts = {"tune": False, "threads": 1, "reps": 1 if b == 1 else 5}
                    if moe:
                        opts["moe"] = {**moe, "plan": plan}
                    with h.mounted(bundles[b]) as url:
                        r = page.evaluate(PAGE_JS, {"url": url, "xs": xs, "ys": np.asarray(y_te[:n]).tolist(),
                                                    "options": opts})
                    row[f"ms_{key}"] = r["ms"]
                    if b == 1:
                        row.update(accuracy=r["acc"], n=r["rows"], wasm_bytes=r["mem"], swaps_per_token=r["swaps"] / n)
                rows.append(row)
        finally:
            page.close()
    return rows


def render(rows: list[dict], batch: int) -> list[str]:
    lines = ["", "## Chromium (wasm, 1 thread, in the Session's worker)", "",
             "The same bundles, plan and held-out digits through `Session.create(url, {moe})`; relaxed SIMD where "
             "the browser has it; latency = median `session.run` as the page sees it (worker round trip "
             f"included), per token (one pass) and per batch of {batch} (5 passes), one configuration after "
             "another: the worker round trip's jitter (~±0.05 ms here) is larger than the differences between "
             "substitute, skip and the plain bundle, which run the same kernels.", "",
             "| config | resident | policy | accuracy | wasm memory KiB | swaps/token | ms/token | "
             f"ms/batch of {batch} |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mem = "-" if r["wasm_bytes"] is None else f"{r['wasm_bytes'] / 1024:.1f}"
        lines.append(f"| {r['config']} | {r['resident']} | {r['policy']} | {r['accuracy']:.4f} | {mem} | "
                     f"{r['swaps_per_token']:.2f} | {r['ms_token']:.3f} | {r['ms_batch']:.3f} |")
    return lines
