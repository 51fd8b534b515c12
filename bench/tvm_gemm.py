"""TVM meta-schedule baseline for the gemm shapes nnjit-web tunes in the browser.

The paper's claim is that a *lite* space of kernel candidates, tuned on the user's
device within ~30 s, reaches kernels comparable to an offline auto-tuner that spends
minutes to hours.  This script measures the offline side: Apache TVM's meta-schedule
tuning the same fp32 gemms for the host CPU, its tuning wall time, and the GFLOP/s of
the best schedule it finds, beside an untuned TVM default.

Optional, standalone, not part of `make setup`
----------------------------------------------
TVM is an optional extra (``pip install 'nnjit-web[tvm]'``); ``make setup`` does not
install it and nothing else in the project imports it.  It lives in its own venv
because its pins (numpy, scipy, the tvm-ffi version) are independent of the main
venv's::

    python3 -m venv .venv-tvm
    .venv-tvm/bin/pip install apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post0 \
        psutil==7.2.2 cloudpickle==3.1.3 xgboost-cpu==3.2.0
    .venv-tvm/bin/python bench/tvm_gemm.py                       # host -mcpu, ~8 min
    .venv-tvm/bin/python bench/tvm_gemm.py --mcpu znver4,znver3  # as in docs/, ~16 min

(the same pins as ``[project.optional-dependencies] tvm`` in pyproject.toml).
Known pitfalls on this machine: apache-tvm-ffi newer than 0.1.14.post0 segfaults in
meta-schedule with TVM 0.27; each LocalBuilder worker spends ~24 s importing TVM, so the
builder timeout must be generous (300 s here); TVM 0.27 moved TIR to ``tvm.tirx`` and
meta-schedule to ``tvm.s_tir.meta_schedule``, and accepts targets only in JSON-dict form.

The script imports nothing from nnjit (it runs under .venv-tvm, which lacks the main
venv's packages).

What is measured
----------------
* C[M,N] = A[M,K] @ B[K,N], fp32, row-major.  B is a *runtime argument*, not a
  constant: TVM cannot pre-pack B offline (no layout-free rewrite), so its kernels
  must handle a plain row-major B on every call.
* Target: ``{"kind": "llvm", "mcpu": <host cpu>, "num-cores": <threads>}``; the host
  cpu is LLVM's detection (``znver4`` on this AMD EPYC, family 25 model 17, which has
  AVX2+FMA *and* AVX-512).  ``--mcpu znver3`` restricts codegen to AVX2+FMA (no
  AVX-512), closer to what a 128-bit wasm SIMD kernel can use.
* Threads: 1 by default (TVM_NUM_THREADS=1 and num-cores=1 in the target), like the
  single-thread (t1) peer numbers in shared/notes/peers.md; ``--threads 2`` for both cores.
* Tuning: ``tvm.s_tir.meta_schedule.tune_tir`` (evolutionary search, XGBoost cost
  model, post-order-apply space), one LocalBuilder worker and the one-worker
  LocalRunner, sequentially per shape.  Each shape is tuned with each budget in
  ``--curve`` (default 16) and with ``--trials`` (default 64), from scratch each time,
  so the wall time of each budget is measured directly.
* Timing of the best schedule: built with tvm.tirx.build, checked against numpy,
  then ``time_evaluator`` (1 warm-up call, then ``--repeat`` (default 30) repeats of
  >= 20 ms each); the median repeat is reported.
* Untuned default: the unscheduled te.compute (i, j, k loop nest, no tiling or
  vectorization) compiled by the default TIR pipeline for the same target.  TVM's
  dlight has no CPU matmul rule (only gemv/reduction), so there is no better
  "default" for a CPU gemm without tuning.
* wasm32: TVM's bundled LLVM lists wasm32 among its targets, but making a module
  that runs in a browser needs emscripten (tvm.contrib.emcc) and the tvmjs runtime.
  emscripten is not installed here (Debian has a 3.1.6 package; not tried), so this
  script measures native code only; see docs/tvm_baseline.md.

Output: JSON on stdout, and a markdown report (default docs/tvm_baseline.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

SHAPES = [(512, 512, 512), (128, 768, 768), (32, 784, 1024)]
ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=64, help="meta-schedule trial budget per shape (default 64)")
    p.add_argument("--curve", type=str, default="16",
                   help="comma-separated smaller budgets also tuned from scratch per shape (default 16; '' for none)")
    p.add_argument("--shapes", type=str, default=",".join("x".join(map(str, s)) for s in SHAPES),
                   help="comma-separated MxKxN (default 512x512x512,128x768x768,32x784x1024)")
    p.add_argument("--mcpu", type=str, default="",
                   help="comma-separated LLVM -mcpu values, each a separate run (default: LLVM's host detection; "
                        "e.g. znver4,znver3 for AVX-512 vs AVX2+FMA only)")
    p.add_argument("--threads", type=int, default=1, help="TVM runtime threads and target num-cores (default 1)")
    p.add_argument("--repeat", type=int, default=30, help="timed repeats of the final kernels (default 30, min 20)")
    p.add_argument("--builder-timeout", type=float, default=300.0, help="LocalBuilder timeout_sec (default 300)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=str, default="", help="meta-schedule work dir (default: a temp dir)")
    p.add_argument("--out", type=str, default=str(ROOT / "docs" / "tvm_baseline.md"),
                   help="markdown report path ('' to skip)")
    p.add_argument("--date", type=str, default="", help="date for the report header (default: today)")
    p.add_argument("--render-json", type=str, default="",
                   help="only re-render --out from a JSON this script printed earlier (no TVM needed)")
    return p.parse_args(argv)


def cpu_model() -> str:
    info = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                k, v = (s.strip() for s in line.split(":", 1))
                info.setdefault(k, v)
    except OSError:
        return platform.processor() or "unknown"
    flags = set(info.get("flags", "").split())
    simd = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni") if f in flags]
    return (f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model {info.get('model', '?')}), "
            f"{os.cpu_count()} logical CPUs, flags incl. {' '.join(simd)}")


def gemm_te(M, K, N):
    from tvm import te

    A = te.placeholder((M, K), "float32", name="A")
    B = te.placeholder((K, N), "float32", name="B")
    k = te.reduce_axis((0, K), name="k")
    C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
    return te.create_prim_func([A, B, C]).with_attr("global_symbol", "main")


def time_kernel(rt_mod, M, K, N, repeat, rng):
    """Check against numpy, then median seconds per call over `repeat` repeats."""
    import numpy as np
    import tvm

    dev = tvm.cpu(0)
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    ta, tb = tvm.runtime.tensor(a, dev), tvm.runtime.tensor(b, dev)
    tc = tvm.runtime.tensor(np.zeros((M, N), np.float32), dev)
    f = rt_mod["main"]
    f(ta, tb, tc)  # warm-up
    err = float(np.max(np.abs(tc.numpy() - ref)) / np.max(np.abs(ref)))
    if err > 1e-4:
        raise RuntimeError(f"gemm {M}x{K}x{N}: max rel err {err:.3g}")
    # one warm-up inside time_evaluator too; each repeat >= 20 ms
    ev = rt_mod.time_evaluator("main", dev, number=1, repeat=max(20, repeat), min_repeat_ms=20)
    res = ev(ta, tb, tc)
    return statistics.median(res.results), err


def tune_one(M, K, N, trials, target, args, work_root):
    from tvm.s_tir import meta_schedule as ms

    mod = gemm_te(M, K, N)
    work_dir = Path(work_root) / f"gemm_{M}x{K}x{N}_t{trials}"
    work_dir.mkdir(parents=True, exist_ok=True)
    builder = ms.builder.LocalBuilder(max_workers=1, timeout_sec=args.builder_timeout)
    runner = ms.runner.LocalRunner(
        timeout_sec=60,
        evaluator_config=ms.runner.EvaluatorConfig(number=3, repeat=1, min_repeat_ms=50),
    )
    t0 = time.perf_counter()
    db = ms.tune_tir(
        mod,
        target,
        str(work_dir),
        max_trials_global=trials,
        num_trials_per_iter=min(64, trials),
        builder=builder,
        runner=runner,
        num_tuning_cores=1,
        seed=args.seed,
    )
    wall = time.perf_counter() - t0
    records = db.get_all_tuning_records()
    measured = [r for r in records if r.run_secs and all(float(s) < 1e9 for s in r.run_secs)]
    sch = ms.tir_integration.compile_tir(db, mod, target)
    if sch is None:
        raise RuntimeError(f"gemm {M}x{K}x{N}: no valid schedule after {trials} trials")
    return sch, wall, len(records), len(measured)


def main(argv=None):
    args = parse_args(argv)
    if args.render_json:
        Path(args.out).write_text(render_md(json.loads(Path(args.render_json).read_text())))
        return 0
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # before the runtime thread pool starts
    # meta-schedule logs its task tables to stdout: keep stdout for the JSON alone
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import numpy as np
    import tvm
    from tvm.target import Target, codegen

    host_cpu = codegen.llvm_get_system_cpu()
    mcpus = [m.strip() for m in args.mcpu.split(",") if m.strip()] or [host_cpu]
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",") if s]
    budgets = sorted({int(x) for x in args.curve.split(",") if x.strip()} - {args.trials}) + [args.trials]
    rng = np.random.default_rng(args.seed)
    work_root = Path(args.work_dir or tempfile.mkdtemp(prefix="tvm_gemm_"))
    command = "python " + " ".join(shlex.quote(a) for a in ([os.path.relpath(__file__, ROOT)] + sys.argv[1:]))

    out = {
        "command": command,
        "date": args.date or time.strftime("%Y-%m-%d"),
        "machine": cpu_model(),
        "tvm_version": tvm.__version__,
        "llvm_host_cpu": host_cpu,
        "targets": [],
        "threads": args.threads,
        "b_operand": "runtime argument (not constant, no offline pre-packing)",
        "results": [],
    }
    for mcpu in mcpus:
        target = Target({"kind": "llvm", "mcpu": mcpu, "num-cores": args.threads})
        out["targets"].append(str(target))
        for M, K, N in shapes:
            out["results"].append(run_shape(M, K, N, mcpu, target, budgets, args, rng, work_root / mcpu))

    print(json.dumps(out, indent=2), file=json_out, flush=True)
    if args.out:
        Path(args.out).write_text(render_md(out))
        print(f"[tvm_gemm] wrote {args.out}", file=sys.stderr)
    return 0


def run_shape(M, K, N, mcpu, target, budgets, args, rng, work_root):
    import tvm

    flops = 2.0 * M * K * N
    tag = f"{mcpu} {M}x{K}x{N}"
    row = {"mcpu": mcpu, "shape": f"{M}x{K}x{N}", "gflop": flops / 1e9, "runs": []}
    base_mod = tvm.tirx.build(gemm_te(M, K, N), target)
    sec, err = time_kernel(base_mod, M, K, N, args.repeat, rng)
    row["untuned"] = {"median_ms": sec * 1e3, "gflops": flops / sec / 1e9, "max_rel_err": err}
    print(f"[tvm_gemm] {tag} untuned: {sec*1e3:.3f} ms, {flops/sec/1e9:.2f} GFLOP/s",
          file=sys.stderr, flush=True)
    for trials in budgets:
        sch, wall, n_rec, n_ok = tune_one(M, K, N, trials, target, args, work_root)
        rt_mod = tvm.tirx.build(sch.mod, target)
        sec, err = time_kernel(rt_mod, M, K, N, args.repeat, rng)
        run = {"trials": trials, "records": n_rec, "valid": n_ok, "tune_s": wall,
               "median_ms": sec * 1e3, "gflops": flops / sec / 1e9, "max_rel_err": err}
        row["runs"].append(run)
        print(f"[tvm_gemm] {tag} {trials} trials: tuned in {wall:.1f} s ({n_rec} records, {n_ok} valid), "
              f"{sec*1e3:.3f} ms, {flops/sec/1e9:.2f} GFLOP/s", file=sys.stderr, flush=True)
    return row


def render_md(out) -> str:
    budgets = [r["trials"] for r in out["results"][0]["runs"]] if out["results"] else []
    L = [
        "# TVM meta-schedule baseline for the gemm shapes",
        "",
        "Generated by `bench/tvm_gemm.py` (optional extra `nnjit-web[tvm]`, its own venv `.venv-tvm`; "
        "not installed by `make setup`).",
        "",
        f"- command: `{out['command']}` (under `.venv-tvm/bin/python`)",
        f"- date: {out['date']}",
        f"- machine: {out['machine']}",
        f"- TVM: apache-tvm {out['tvm_version']}",
        f"- targets: {', '.join('`' + t + '`' for t in out['targets'])} (LLVM host cpu: "
        f"{out['llvm_host_cpu']}; znver4 uses AVX-512, znver3 only AVX2+FMA), "
        f"{out['threads']} thread(s) (TVM_NUM_THREADS)",
        f"- operands: fp32, row-major, C = A @ B; B is a {out['b_operand']}",
        "- tuning: `tvm.s_tir.meta_schedule.tune_tir`, evolutionary search + XGBoost cost model, "
        "1 LocalBuilder worker, 1 LocalRunner worker; each budget tuned from scratch, wall time includes "
        "builder start-up (~24 s of TVM import per builder worker)",
        "- timing: best schedule built with `tvm.tirx.build`, checked against numpy, then `time_evaluator` "
        "median of >= 20 repeats (each >= 20 ms) after warm-up",
        "- untuned: the unscheduled `te.compute` loop nest (i, j, k) under the default TIR pipeline "
        "(dlight has no CPU matmul rule)",
        "",
    ]
    hdr = "| -mcpu | M×K×N | GFLOP | untuned GFLOP/s |"
    sep = "|---|---|---|---|"
    for b in budgets:
        hdr += f" {b} trials: tune s | {b} trials: GFLOP/s (ms) |"
        sep += "---|---|"
    L += [hdr, sep]
    for r in out["results"]:
        line = f"| {r['mcpu']} | {r['shape']} | {r['gflop']:.3f} | {r['untuned']['gflops']:.2f} |"
        for run in r["runs"]:
            line += f" {run['tune_s']:.0f} | {run['gflops']:.1f} ({run['median_ms']:.3f}) |"
        L.append(line)
    L += [
        "",
        "Trials = `max_trials_global` of meta-schedule; records/valid per run are in the JSON "
        "(stdout of the script).",
        "",
        "Reading: each tune's wall time includes a fixed ~20-30 s start-up (the builder and runner "
        "worker pools import TVM), so the small budgets are mostly start-up. The machine is a shared "
        "2-core VM: single runs vary (up to 2x was seen for other peers), so treat the numbers as one "
        "sample each.",
        "",
        "wasm32: TVM's LLVM backend lists wasm32 among its targets, but turning a TVM module into a "
        "browser-loadable .wasm needs emscripten (`tvm.contrib.emcc`) and the tvmjs runtime. emscripten "
        "is not installed on this machine (Debian has a 3.1.6 package, not tried), so TVM was not measured as wasm; "
        "the numbers above are native x86-64 code and are an upper reference, not a like-for-like "
        "wasm comparison.",
        "",
    ]
    return "\n".join(L)


if __name__ == "__main__":
    sys.exit(main())
