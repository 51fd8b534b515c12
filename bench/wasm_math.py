"""Time the shared f32x4 math of kernels_wasm/_math.wat.j2 in V8 (node), the committed version (HEAD)
against the working tree, and measure both versions' errors against float64.

    python -m nnjit.bench.wasm_math [--n 1048576] [--runs 11] [--rounds 7] [--no-kernels] [--no-accuracy]
                                    [--against FILE]

Per function: ns/element of a loop that loads 4 floats, calls $f4 and stores the result, over a buffer of
--n floats in [-8, 8] (wide enough to reach every branch of the old code, small enough that its exp never
goes subnormal, which would time the CPU's microcode assists instead of the code). The "copy" row is the
same loop without the call, i.e. the part of each number that is not the function.
Kernels: the softmax and gemm+GELU shapes of the MiniLM encoder, rendered from the real templates.

V8 tiers up asynchronously, so node runs with --no-liftoff (optimised code from the first call); each
number is the best, over --rounds rounds that interleave all items, of the median of --runs calls, so a
burst of other load on the machine hits old and new alike. Accuracy runs through wasmtime
(bit-identical: nothing in _math uses relaxed SIMD).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path

import jinja2
import numpy as np

from nnjit.compiler.codegen import wasm
from nnjit.compiler.codegen.gemm_pack import gemm_candidates, packed_size
from nnjit.compiler.wasm_native import run_kernel

ROOT = Path(__file__).resolve().parent.parent
FUNCS = ["exp", "sigmoid", "tanh", "erf", "gelu"]

LOOP = """{% import "_math.wat.j2" as m %}
(module
  (import "env" "memory" (memory 1))
{{ m.functions() }}
  (func (export "run") (param $x i32) (param $y i32) (local $end i32)
    (local.set $end (i32.add (local.get $x) (i32.const {{ n * 4 }})))
    (loop $l
      (v128.store (local.get $y) {{ expr }})
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (local.set $y (i32.add (local.get $y) (i32.const 16)))
      (br_if $l (i32.lt_u (local.get $x) (local.get $end)))))
)
"""

NODE = r"""
const fs = require('fs');
const spec = JSON.parse(fs.readFileSync(process.argv[2]));
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 4294967296);
const runs = [];
for (const it of spec.items) {
  let cur = 64; const addrs = [];
  for (const n of it.sizes) { addrs.push(cur); cur += Math.ceil(n / 64) * 64 + 64; }
  const memory = new WebAssembly.Memory({initial: Math.ceil((cur + 64) / 65536)});
  const f32 = new Float32Array(memory.buffer);
  for (let i = 0; i < (cur >> 2); i++) f32[i] = it.lo + (it.hi - it.lo) * rand();
  const inst = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(it.wasm)), {env: {memory}});
  const run = inst.exports.run;
  for (let i = 0; i < 5; i++) run(...addrs);
  runs.push(() => run(...addrs));
}
// Rounds interleave the items, so that a burst of load elsewhere on the machine hits old and new alike;
// each item keeps its best round.
const best = spec.items.map(() => Infinity);
for (let round = 0; round < spec.rounds; round++) {
  spec.items.forEach((it, k) => {
    const ts = [];
    for (let r = 0; r < spec.runs; r++) { const t0 = performance.now(); runs[k](); ts.push(performance.now() - t0); }
    ts.sort((a, b) => a - b);
    best[k] = Math.min(best[k], ts[ts.length >> 1]);
  });
}
spec.items.forEach((it, k) => console.log(JSON.stringify({name: it.name, ms: best[k]})));
"""


def environments(tmp: Path, against: str | None = None) -> dict[str, jinja2.Environment]:
    """Template environments for 'old' (_math as committed at HEAD, or the file `against`) and 'new'
    (the working tree)."""
    if against:
        old = Path(against).read_text()
    else:
        old = subprocess.run(["git", "show", "HEAD:kernels_wasm/_math.wat.j2"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    (tmp / "old").mkdir()
    (tmp / "old" / "_math.wat.j2").write_text(old)
    new = wasm._env()
    # an overlay, not the shared environment itself (wasm._env() is cached): same settings, own loader
    old_env = new.overlay(loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(tmp / "old")), new.loader]))
    return {"old": old_env, "new": new}


def loop_module(env, n: int, fn: str | None) -> bytes:
    x = "(v128.load (local.get $x))"
    expr = x if fn is None else f"(call ${fn}4 {x})"
    return wasm.assemble(env.from_string(LOOP).render(n=n, expr=expr), f"loop {fn}")


def kernel(env, family: str, params: dict) -> bytes:
    return wasm.assemble(env.get_template(f"{family}.wat.j2").render(p=params, relaxed=False), family)


def gemm_params(M, N, K, act):
    return dict(M=M, N=N, K=K, batch=[], a_strides=[], b_strides=[], c_strides=[], b_packed=True,
                bias=None, residual=False, act=act, act_min=None, act_max=None, **gemm_candidates(M, N, K)[0])


def time_node(items: list[dict], runs: int, rounds: int, tmp: Path) -> dict[str, float]:
    """ms per call (best median of `runs` calls over `rounds` interleaved rounds) for each item
    {name, wasm (bytes), sizes (buffer bytes, one per run argument), lo, hi (uniform fill range)}."""
    node = shutil.which("node")
    if node is None:
        raise SystemExit("this benchmark needs node on PATH")
    spec = []
    for i, it in enumerate(items):
        path = tmp / f"m{i}.wasm"
        path.write_bytes(it["wasm"])
        spec.append(dict(it, wasm=str(path)))
    (tmp / "spec.json").write_text(json.dumps(dict(runs=runs, rounds=rounds, items=spec)))
    (tmp / "bench.js").write_text(NODE)
    out = subprocess.run([node, "--no-liftoff", str(tmp / "bench.js"), str(tmp / "spec.json")],
                         check=True, capture_output=True, text=True).stdout
    return {r["name"]: r["ms"] for r in map(json.loads, out.splitlines())}


_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])
REF = {
    "exp": np.exp,
    "sigmoid": lambda x: 0.5 + 0.5 * np.tanh(0.5 * x),
    "tanh": np.tanh,
    "erf": _erf,
    "gelu": lambda x: 0.5 * x * _erfc(-x / math.sqrt(2)),
}


def accuracy(env, fn: str) -> tuple[float, float]:
    """(max |y − ref| / max(1, |ref|) over a dense grid of [-100, 100] plus tiny magnitudes, max relative
    error for |x| <= 1)."""
    grid = np.concatenate([np.linspace(-12, 12, 240001), np.geomspace(1e-30, 100, 60000),
                           -np.geomspace(1e-30, 100, 60000), np.linspace(-100, 100, 20001)]).astype(np.float32)
    n = -(-grid.size // 4) * 4
    x = np.resize(grid, n)
    y = run_kernel(loop_module(env, n, fn), [x], [((n,), np.float32)])[0].astype(np.float64)
    with np.errstate(over="ignore"):
        ref = REF[fn](x.astype(np.float64))
    ok = np.abs(ref) < 3.4e38
    absrel = (np.abs(y[ok] - ref[ok]) / np.maximum(1, np.abs(ref[ok]))).max()
    small = (np.abs(x) <= 1) & (np.abs(ref) > 1e-30)
    rel = (np.abs(y[small] - ref[small]) / np.abs(ref[small])).max()
    return float(absrel), float(rel)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1 << 20, help="floats per function call (multiple of 4)")
    ap.add_argument("--runs", type=int, default=11, help="calls per round (their median counts)")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (the best counts)")
    ap.add_argument("--no-kernels", action="store_true", help="skip the softmax and gemm kernels")
    ap.add_argument("--no-accuracy", action="store_true")
    ap.add_argument("--against", metavar="FILE", help="compare with this _math.wat.j2 instead of HEAD's")
    args = ap.parse_args(argv)
    n = args.n // 4 * 4
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        envs = environments(tmp, args.against)
        items = []
        for ver, env in envs.items():
            for fn in [None] + FUNCS:
                items.append(dict(name=f"{ver} {fn or 'copy'}", wasm=loop_module(env, n, fn),
                                  sizes=[4 * n, 4 * n], lo=-8.0, hi=8.0))
            if not args.no_kernels:
                # softmax over 12 heads × 128 queries × 128 keys, logits of attention-like spread
                sm = kernel(env, "softmax", dict(outer=12 * 128, n=128, inner=1))
                items.append(dict(name=f"{ver} softmax", wasm=sm, sizes=[12 * 128 * 128 * 4] * 2, lo=-10.0, hi=10.0))
                M, N, K = 128, 1536, 384
                nr = gemm_candidates(M, N, K)[0]["nr"]
                for act in ["none", "gelu"]:
                    gm = kernel(env, "gemm", gemm_params(M, N, K, act))
                    items.append(dict(name=f"{ver} gemm {act}", wasm=gm,
                                      sizes=[M * K * 4, packed_size(K, N, nr) * 4, M * N * 4], lo=-0.5, hi=0.5))
        ms = time_node(items, args.runs, args.rounds, tmp)
        node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        print(f"V8 (node {node}, --no-liftoff), {n} floats in [-8, 8], "
              f"ns/element (best of {args.rounds} medians of {args.runs})")
        print(f"  {'function':<10} {'old':>8} {'new':>8} {'speedup':>8}   (call only: old, new, speedup)")
        copy = {v: ms[f"{v} copy"] * 1e6 / n for v in envs}
        print(f"  {'copy':<10} {copy['old']:8.3f} {copy['new']:8.3f}")
        for fn in FUNCS:
            o, w = (ms[f"{v} {fn}"] * 1e6 / n for v in ("old", "new"))
            co, cw = o - copy["old"], w - copy["new"]
            print(f"  {fn:<10} {o:8.3f} {w:8.3f} {o / w:7.2f}x   ({co:.3f}, {cw:.3f}, {co / cw:.2f}x)")
        if not args.no_kernels:
            print("  kernels, ms per call (plain SIMD build):")
            for k in ["softmax", "gemm none", "gemm gelu"]:
                o, w = ms[f"old {k}"], ms[f"new {k}"]
                label = {"softmax": "softmax 12x128x128", "gemm none": "gemm 128x1536x384",
                         "gemm gelu": "  + GELU epilogue"}[k]
                print(f"  {label:<20} {o:8.3f} {w:8.3f} {o / w:7.2f}x")
        if not args.no_accuracy:
            print("max |err|/max(1,|y|) on a dense grid of [-100, 100] | max relative error for |x| <= 1")
            for fn in FUNCS:
                (ao, ro), (an, rn) = accuracy(envs["old"], fn), accuracy(envs["new"], fn)
                print(f"  {fn:<10} old {ao:9.3g} {ro:9.3g}   new {an:9.3g} {rn:9.3g}")


if __name__ == "__main__":
    main()
