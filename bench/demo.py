"""`make demo`: compile zoo models, run them in headless Chromium (nnjit, WASM SIMD, in a Worker)
beside onnxruntime-web and native onnxruntime, and print one table."""
from __future__ import annotations

import sys

from .compare import measure

MODELS = ["digits-cnn", "mobilenetv2", "minilm-l6"]


def main(argv=None) -> int:
    models = (argv if argv is not None else sys.argv[1:]) or MODELS
    print(f"nnjit demo: {', '.join(models)} — compiling, then running in headless Chromium …", flush=True)
    rows = measure(models, runs=10, rounds=1, log=lambda s: print(s, flush=True))
    head = ("model", "backend", "cold ms", "warm median ms", "ORT-web ms", "native ms", "max abs err", "max rel err")
    table = [head]
    for r in rows:
        table.append((r["model"], "wasm" + (" relaxed-simd" if r["relaxed_simd"] else " simd"),
                      f"{r['nnjit_first_ms']:.2f}", f"{r['nnjit']['median']:.2f}", f"{r['ort_web']['median']:.2f}",
                      f"{r['native']['median']:.2f}", f"{r['max_abs_err']:.2e}", f"{r['max_rel_err']:.2e}"))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    print()
    for k, row in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print("\ncold = Session.create → first output (fetch, verify, compile, first run); warm = median of later runs; "
          "errors vs native onnxruntime on the same inputs.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
