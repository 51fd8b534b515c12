"""Time the WebGPU gemm kernel natively through wgpu-py, per schedule candidate, against a naive
one-thread-per-output WGSL kernel, and print ms and GFLOP/s.

    python -m nnjit.bench.wgsl_gemm [M N K] [--runs 8] [--rounds 3] [--packed] [--limit 30]
                                    [--only-default | --all] [--json FILE]

On a machine without a GPU wgpu runs on lavapipe (Vulkan on the CPU), whose numbers rank schedules
for CPUs (and roughly for SwiftShader) but not for GPUs: compare schedules within one adapter only.

Timing: with the timestamp-query feature, one compute pass holds R dispatches between a begin and an
end timestamp (device time only); the number is the best of --rounds passes divided by R. Without it,
wall time around one submit of R dispatches plus a 4-byte read-back (so it includes the submit/sync
overhead once per round). R is --runs, raised so that a round lasts at least 20 ms, and one untimed
round goes first: GPUs lower their clocks while the CPU compiles the next kernel, and a 1 ms round
would measure the clock ramp rather than the kernel. Every result is checked against numpy first.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from nnjit.compiler.codegen import wgsl
from nnjit.compiler.codegen.gemm_pack import pack_b
from nnjit.compiler.codegen.wgsl_space import all_schedules, full, gemm_wgsl_candidates, tile
from nnjit.compiler.wgpu_native import adapter_name, device

# The baseline: each invocation computes one C element with a plain K loop straight from global
# memory — what a first WebGPU port of a matmul looks like, no tiling, no workgroup memory.
NAIVE_WGSL = """
@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  if (m >= @M@u || n >= @N@u) {
    return;
  }
  var acc = 0.0;
  for (var k = 0u; k < @K@u; k += 1u) {
    acc += A[m * @K@u + k] * B[k * @N@u + n];
  }
  C[m * @N@u + n] = acc;
}
"""


def gemm_params(M: int, N: int, K: int, packed: bool, nr: int = 8) -> dict:
    return dict(M=M, N=N, K=K, batch=[], a_strides=[], b_strides=[], c_strides=[], b_packed=packed, nr=nr,
                bias=None, residual=False, act="none", act_min=None, act_max=None)


class Bench:
    """Buffers for one problem, reused by every kernel timed on it."""

    def __init__(self, M: int, N: int, K: int, packed: bool, nr: int = 8):
        import wgpu
        self.wgpu = wgpu
        self.dev = device()
        self.M, self.N, self.K = M, N, K
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((M, K)).astype(np.float32)
        self.b = rng.standard_normal((K, N)).astype(np.float32)
        self.ref = self.a.astype(np.float64) @ self.b
        usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC
        self.buf_a = self.dev.create_buffer_with_data(data=self.a, usage=usage)
        self.buf_b_plain = self.dev.create_buffer_with_data(data=self.b, usage=usage)
        self.buf_b = (self.dev.create_buffer_with_data(data=pack_b(self.b, nr), usage=usage) if packed
                      else self.buf_b_plain)
        self.buf_c = self.dev.create_buffer(size=M * N * 4, usage=usage | wgpu.BufferUsage.COPY_DST)
        self.has_ts = "timestamp-query" in self.dev.features
        if self.has_ts:
            self.qs = self.dev.create_query_set(type=wgpu.QueryType.timestamp, count=2)
            self.qbuf = self.dev.create_buffer(size=16,
                                              usage=wgpu.BufferUsage.QUERY_RESOLVE | wgpu.BufferUsage.COPY_SRC)

    def _pipeline(self, text: str, b_buf):
        module = self.dev.create_shader_module(code=text)
        pipe = self.dev.create_compute_pipeline(layout="auto", compute={"module": module, "entry_point": "main"})
        bind = self.dev.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=[
            {"binding": i, "resource": {"buffer": b, "offset": 0, "size": b.size}}
            for i, b in enumerate([self.buf_a, b_buf, self.buf_c])])
        return pipe, bind

    def _encode(self, pipe, bind, dispatch, runs, timestamps):
        enc = self.dev.create_command_encoder()
        kw = {}
        if timestamps:
            kw["timestamp_writes"] = {"query_set": self.qs, "beginning_of_pass_write_index": 0,
                                      "end_of_pass_write_index": 1}
        p = enc.begin_compute_pass(**kw)
        p.set_pipeline(pipe)
        p.set_bind_group(0, bind)
        for _ in range(runs):
            p.dispatch_workgroups(*dispatch)
        p.end()
        if timestamps:
            enc.resolve_query_set(self.qs, 0, 2, self.qbuf, 0)
        return enc.finish()

    def _round(self, pipe, bind, dispatch, runs) -> tuple[float, float]:
        """(device seconds per dispatch or inf without timestamps, wall seconds per dispatch)."""
        t0 = time.perf_counter()
        self.dev.queue.submit([self._encode(pipe, bind, dispatch, runs, self.has_ts)])
        self.dev.queue.read_buffer(self.buf_c, 0, 4)
        wall = (time.perf_counter() - t0) / runs
        if not self.has_ts:
            return float("inf"), wall
        t = np.frombuffer(self.dev.queue.read_buffer(self.qbuf), np.uint64)
        return float(t[1] - t[0]) * 1e-9 / runs, wall

    def time(self, text: str, dispatch, runs: int, rounds: int, naive: bool = False,
             min_round_s: float = 0.02) -> dict:
        """ms per dispatch (best round), after a result check and a warm-up.

        A GPU drops its clocks while the CPU compiles the next kernel, and a round of a few dispatches
        of a small gemm is over before they come back up: each round is made at least `min_round_s`
        long, and one such round is run untimed first."""
        pipe, bind = self._pipeline(text, self.buf_b_plain if naive else self.buf_b)
        self.dev.queue.write_buffer(self.buf_c, 0, np.full(self.M * self.N, np.nan, np.float32))
        self.dev.queue.submit([self._encode(pipe, bind, dispatch, 1, False)])
        out = np.frombuffer(self.dev.queue.read_buffer(self.buf_c), np.float32).reshape(self.M, self.N)
        err = float(np.abs(out - self.ref).max() / np.abs(self.ref).max())
        ts, wall = self._round(pipe, bind, dispatch, runs)
        one = ts if ts < float("inf") else wall
        runs = int(min(max(runs, -(-min_round_s // max(one, 1e-7))), 5000))
        self._round(pipe, bind, dispatch, runs)
        best_ts, best_wall = float("inf"), float("inf")
        for _ in range(rounds):
            ts, wall = self._round(pipe, bind, dispatch, runs)
            best_ts, best_wall = min(best_ts, ts), min(best_wall, wall)
        sec = best_ts if self.has_ts and 0 < best_ts < float("inf") else best_wall
        flops = 2.0 * self.M * self.N * self.K
        return {"ms": sec * 1e3, "gflops": flops / sec / 1e9, "wall_ms": best_wall * 1e3, "err": err,
                "runs": runs, "timer": "timestamp" if sec is best_ts else "wall"}


def describe(s: dict) -> str:
    if not s:
        return "template default"
    f = full(s)
    (wx, wy), (bm, bn) = f["wg"], tile(f)
    return (f"wg {wx}x{wy} t {f['tm']}x{f['tn']} tile {bm}x{bn} bk {f.get('bk', '-')} vec{f['vec']}"
            f" {'staged' if f['stage'] else 'direct'}")


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", nargs="*", type=int, default=[512, 512, 512], help="M N K")
    ap.add_argument("--runs", type=int, default=8, help="dispatches per timed round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--packed", action="store_true", help="B as packed panels (a constant weight)")
    ap.add_argument("--limit", type=int, default=30, help="time at most this many candidates")
    ap.add_argument("--only-default", action="store_true")
    ap.add_argument("--all", action="store_true",
                    help="time every schedule of the space (wgsl_space.all_schedules), not just the candidates")
    ap.add_argument("--json", help="also write the rows as JSON here")
    args = ap.parse_args(argv)
    M, N, K = (args.shape + [512, 512, 512][len(args.shape):])[:3]
    bench = Bench(M, N, K, args.packed)
    print(f"adapter: {adapter_name()}; gemm {M}x{N}x{K}, B {'packed' if args.packed else 'row-major'}; "
          f"timer: {'timestamp queries' if bench.has_ts else 'wall clock'}", flush=True)
    rows = []

    def report(name, s, text, dispatch, naive=False):
        r = bench.time(text, dispatch, args.runs, args.rounds, naive)
        r.update(name=name, schedule=s)
        rows.append(r)
        flag = "" if r["err"] <= 1e-5 else f"  WRONG (err {r['err']:.2g})"
        if args.json:  # rewritten per row, so a run cut short still leaves its rows
            with open(args.json, "w") as f:
                json.dump({"adapter": adapter_name(), "shape": [M, N, K], "rows": rows}, f, indent=1)
        print(f"{name:>8}  {describe(s) if s is not None else 'one thread per output':<52} "
              f"{r['ms']:9.3f} ms {r['gflops']:9.2f} GFLOP/s  (wall {r['wall_ms']:.3f} ms){flag}", flush=True)

    naive_text = NAIVE_WGSL.replace("@M@", str(M)).replace("@N@", str(N)).replace("@K@", str(K))
    report("naive", None, naive_text, [-(-N // 16), -(-M // 16), 1], naive=True)
    cands = gemm_wgsl_candidates(M, N, K)
    if args.all:
        args.limit = 10 ** 6
        cands = cands[:1] + [s for s in all_schedules() if s not in cands[:1]]
    if args.only_default:
        cands = cands[:1]
    p = gemm_params(M, N, K, args.packed)
    for i, s in enumerate(cands[:args.limit]):
        text, dispatch, _ = wgsl.build("gemm", p, s)
        report("default" if i == 0 else f"cand{i}", s, text, dispatch)
    ok = [r for r in rows if r["err"] <= 1e-5 and r["name"] != "naive"]
    if ok:
        best = max(ok, key=lambda r: r["gflops"])
        d, nv = rows[1], rows[0]
        print(f"\nsummary ({adapter_name()}): naive {nv['gflops']:.2f} GFLOP/s, default {d['gflops']:.2f} GFLOP/s "
              f"({d['gflops'] / nv['gflops']:.1f}x naive), best {best['name']} {best['gflops']:.2f} GFLOP/s "
              f"[{describe(best['schedule'])}] ({best['gflops'] / nv['gflops']:.1f}x naive)")
    return rows


if __name__ == "__main__":
    main()
