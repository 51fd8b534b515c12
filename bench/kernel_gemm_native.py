"""Time the gemm kernel and print GFLOP/s per schedule candidate, natively in wasmtime and (with
--node) in V8 through Node.js, which is closer to what the browser runs.

    python -m nnjit.bench.kernel_gemm_native [M N K] [--runs 15] [--unpacked] [--node]
                                             [--extra mr,nr[,pw] ...]

Each number is the median of --runs calls after a warm-up (best median of three rounds in V8, whose
timer and tier-up are noisier). Cranelift (wasmtime) schedules this code worse than V8's optimising
tier, so compare schedules within one engine. The whole schedule space (kb, mb, kunroll, pw):
bench/gemm_space.py.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from nnjit.compiler.codegen import wasm
from nnjit.compiler.codegen.gemm_pack import gemm_candidates, pack_b, packed_size
from nnjit.compiler.wasm_native import Memory

_NODE_SCRIPT = r"""
const fs = require('fs');
const spec = JSON.parse(fs.readFileSync(process.argv[2]));
for (const it of spec.items) {
  let cur = 64; const addrs = [];
  for (const n of it.sizes) { addrs.push(cur); cur += Math.ceil(n / 64) * 64 + 64; }
  const memory = new WebAssembly.Memory({initial: Math.ceil((cur + 64) / 65536)});
  const f32 = new Float32Array(memory.buffer);
  for (let i = 0; i < (cur >> 2); i++) f32[i] = Math.random() - 0.5;
  const inst = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(it.wasm)), {env: {memory}});
  const run = inst.exports.run;
  for (let i = 0; i < 5; i++) run(...addrs);
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const ts = [];
    for (let r = 0; r < spec.runs; r++) { const t0 = performance.now(); run(...addrs); ts.push(performance.now() - t0); }
    ts.sort((a, b) => a - b);
    best = Math.min(best, ts[ts.length >> 1] / 1e3);
  }
  console.log(JSON.stringify({name: it.name, gflops: it.flops / best / 1e9}));
}
"""


def gemm_params(M: int, N: int, K: int, sched: dict, packed: bool) -> dict:
    return dict(M=M, N=N, K=K, batch=[], a_strides=[], b_strides=[], c_strides=[], b_packed=packed,
                bias=None, residual=False, act="none", act_min=None, act_max=None, **sched)


def time_native(M: int, N: int, K: int, sched: dict, packed: bool, binary: bytes, runs: int) -> float:
    """Median GFLOP/s of `runs` calls in wasmtime after a warm-up (checks the result once)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    b_mem = pack_b(b, sched.get("pw", sched["nr"])) if packed else b
    sizes = [a.nbytes, b_mem.nbytes, M * N * 4]
    addrs, cur = [], 64
    for n in sizes:
        addrs.append(cur)
        cur += -(-n // 64) * 64 + 64
    mem = Memory(cur + 64)
    mem.view(addrs[0], a.shape, np.float32)[:] = a
    mem.view(addrs[1], b_mem.shape, np.float32)[:] = b_mem
    fn = mem.instantiate(binary)
    for _ in range(3):
        mem.call(fn, *addrs)
    got = mem.view(addrs[2], (M, N), np.float32)
    ref = a.astype(np.float64) @ b
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), "wrong result"
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        mem.call(fn, *addrs)
        times.append(time.perf_counter() - t0)
    return 2.0 * M * N * K / statistics.median(times) / 1e9


def time_node(M: int, N: int, K: int, jobs: list[tuple[str, bytes, int]], runs: int) -> dict[str, float]:
    """GFLOP/s per job name in V8 (node); jobs are (name, wasm, B bytes)."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("--node needs node on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for i, (name, binary, b_bytes) in enumerate(jobs):
            path = Path(tmp) / f"k{i}.wasm"
            path.write_bytes(binary)
            items.append(dict(name=name, wasm=str(path), sizes=[M * K * 4, b_bytes, M * N * 4],
                              flops=2.0 * M * N * K))
        (Path(tmp) / "spec.json").write_text(json.dumps(dict(runs=runs, items=items)))
        (Path(tmp) / "bench.js").write_text(_NODE_SCRIPT)
        # Node 20 still hides relaxed SIMD behind a flag; --no-liftoff times the optimised tier only.
        out = subprocess.run([node, "--experimental-wasm-relaxed-simd", "--no-liftoff", str(Path(tmp) / "bench.js"),
                              str(Path(tmp) / "spec.json")], check=True, capture_output=True, text=True).stdout
    return {r["name"]: r["gflops"] for r in map(json.loads, out.splitlines())}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shape", nargs="*", type=int, default=[512, 512, 512], help="M N K")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--unpacked", action="store_true", help="B read row-major instead of packed panels")
    ap.add_argument("--node", action="store_true", help="also time in V8 through node")
    ap.add_argument("--extra", nargs="*", default=[], help="more schedules as mr,nr or mr,nr,pw (packed panel width)")
    args = ap.parse_args(argv)
    M, N, K = args.shape
    packed = not args.unpacked
    scheds = gemm_candidates(M, N, K)
    scheds += [dict(zip(["mr", "nr", "pw"], map(int, e.split(",")))) for e in args.extra]
    builds = [(s, *wasm.build("gemm", gemm_params(M, N, K, s, packed))) for s in scheds]
    v8 = {}
    if args.node:
        jobs = []
        for s, plain, relaxed in builds:
            b_bytes = (packed_size(K, N, s.get("pw", s["nr"])) if packed else K * N) * 4
            jobs += [(f"{s} plain", plain, b_bytes), (f"{s} relaxed", relaxed, b_bytes)]
        v8 = time_node(M, N, K, jobs, args.runs)
    print(f"gemm {M}x{N}x{K} ({'packed' if packed else 'row-major'} B), GFLOP/s, median of {args.runs}")
    print(f"  {'schedule':<22} {'wasmtime plain':>15} {'relaxed':>8}" + (f" {'V8 plain':>9} {'relaxed':>8}" if v8 else ""))
    for s, plain, relaxed in builds:
        nat = [time_native(M, N, K, s, packed, b, args.runs) for b in (plain, relaxed)]
        line = f"  {str(tuple(s.values())):<22} {nat[0]:15.1f} {nat[1]:8.1f}"
        if v8:
            line += f" {v8[f'{s} plain']:9.1f} {v8[f'{s} relaxed']:8.1f}"
        print(line)


if __name__ == "__main__":
    main()
