"""On-device tuning in Chromium: winners found, kept in IndexedDB across page loads, corrupt cache
entries dropped, and runs correct while kernels are swapped under them."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from nnjit.compiler.bundle import read_manifest
from nnjit.compiler.pipeline import compile_model
from tests.kernels.test_softmax import ref_softmax

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def matmul_bundle(tmp_path_factory):
    d = tmp_path_factory.mktemp("tune")
    rng = np.random.default_rng(7)
    w = rng.standard_normal((96, 130)).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Relu", ["y"], ["z"])], "mm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [37, 96])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [37, 130])],
                          [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())])
    model = d / "mm.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), model)
    compile_model(model, d / "bundle", backends=("wasm",))
    x = rng.standard_normal((37, 96)).astype(np.float32)
    return d / "bundle", {"x": x}, np.maximum(x.astype(np.float64) @ w, 0)


def _check(out, ref):
    assert np.abs(out["z"] - ref).max() <= 1e-5 * np.abs(ref).max()


def _fresh_context(harness):
    # Each test starts from an empty tuning cache of its own.
    if harness._context is not None:
        harness._context.close()
    harness._context = None


def test_tunes_then_reuses_the_cache_on_the_next_page_load(harness, matmul_bundle):
    bundle, feeds, ref = matmul_bundle
    _fresh_context(harness)
    seen = []
    first = harness.run_bundle(bundle, feeds, runs=3, tune_budget_ms=20000, shared_context=True, on_progress=seen.append)
    _check(first["outputs"], ref)
    t = first["tuning"]
    assert t["status"] == "done" and t["source"] == "tuned"
    assert t["candidates"] >= 2 and t["result"]["complete"]
    assert t["result"]["measured"] == t["result"]["total"] == t["candidates"]
    assert 0 < t["result"]["bestMs"] <= t["result"]["defaultMs"]
    assert seen and seen[-1]["total"] == t["candidates"]
    winner = t["result"]["winners"][0]["candidate"]

    second = harness.run_bundle(bundle, feeds, runs=3, tune_budget_ms=20000, shared_context=True)
    _check(second["outputs"], ref)
    t2 = second["tuning"]
    assert t2["source"] == "cache" and t2["result"]["measured"] == 0
    assert t2["result"]["winners"][0]["candidate"] == winner
    # The winner is what the plan runs.
    assert second["info"]["tuning"]["result"]["winners"][0]["candidate"] == winner


def test_a_corrupt_cache_entry_is_dropped_and_tuning_starts_over(harness, matmul_bundle):
    bundle, feeds, ref = matmul_bundle
    _fresh_context(harness)
    harness.run_bundle(bundle, feeds, runs=1, tune_budget_ms=20000, shared_context=True)
    page = harness._shared_context().new_page()
    try:
        page.goto(harness.server.url("/pages/run.html"))
        n = page.evaluate("""async () => {
            const cache = await import('/nnjit/cache.js');
            const keys = await cache.keys();
            for (const k of keys) await cache.putRaw(k, {format: 1, groups: [{key: 'no such group', winner: 99, done: true}]});
            return keys.length;
        }""")
    finally:
        page.close()
    assert n == 1
    again = harness.run_bundle(bundle, feeds, runs=2, tune_budget_ms=20000, shared_context=True)
    _check(again["outputs"], ref)
    t = again["tuning"]
    assert "unknown step group" in t["cacheDropped"]
    assert t["source"] == "tuned" and t["result"]["measured"] == t["candidates"]


def test_off_and_nothing_to_tune(harness, matmul_bundle):
    bundle, feeds, ref = matmul_bundle
    off = harness.run_bundle(bundle, feeds, runs=1, tune_budget_ms=0)
    assert off["tuning"]["status"] == "off" and off["tuning"]["result"] is None
    _check(off["outputs"], ref)


def test_webgpu_candidates_are_tuned_and_stay_correct(gpu_harness, tmp_path, matmul_bundle):
    _, feeds, ref = matmul_bundle
    # The same model with webgpu kernels: its gemm carries the pruned WGSL space.
    compile_model(matmul_bundle[0].parent / "mm.onnx", tmp_path / "gpu", backends=("wasm", "webgpu"))
    r = gpu_harness.run_bundle(tmp_path / "gpu", feeds, runs=2, backend="webgpu", tune_budget_ms=4000)
    assert r["backend"] == "webgpu"
    t = r["tuning"]
    assert t["candidates"] >= 8 and t["result"]["measured"] >= 2
    _check(r["outputs"], ref)


@pytest.fixture(scope="module")
def big_matmul(tmp_path_factory):
    """Large enough (300·256·128 multiply-adds) for the runtime to split it across threads, and taller
    than wide, so that every schedule cuts it by row tiles, the split that deals tasks out (docs/space.md)."""
    d = tmp_path_factory.mktemp("threads")
    rng = np.random.default_rng(11)
    w = rng.standard_normal((256, 128)).astype(np.float32)
    bias = rng.standard_normal(128).astype(np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Add", ["y", "b"], ["z"])], "mm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [300, 256])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [300, 128])],
                          [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel()),
                           helper.make_tensor("b", TensorProto.FLOAT, bias.shape, bias)])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), d / "mm.onnx")
    compile_model(d / "mm.onnx", d / "bundle", backends=("wasm",))
    x = rng.standard_normal((300, 256)).astype(np.float32)
    return d / "bundle", {"x": x}, x.astype(np.float64) @ w + bias


@pytest.mark.parametrize("threads", [2])
def test_threads_give_the_same_outputs_as_one_thread(harness, big_matmul, threads):
    bundle, feeds, ref = big_matmul
    one = harness.run_bundle(bundle, feeds, runs=2, threads=1, profile_runs=2)
    many = harness.run_bundle(bundle, feeds, runs=2, threads=threads, profile_runs=2)
    assert many["info"]["threads"] == threads and many["info"]["threadsReason"] is None
    # The gemm really ran split, and bit for bit like one thread.
    assert [p["threads"] for p in many["profile"] if p["family"] == "gemm"] == [threads]
    assert [p["threads"] for p in one["profile"]] == [1] * len(one["profile"])
    assert np.array_equal(many["outputs"]["z"], one["outputs"]["z"])
    assert np.abs(one["outputs"]["z"] - ref).max() <= 1e-5 * np.abs(ref).max()


def test_softmax_splits_its_slices_and_matches_one_thread(harness, tmp_path):
    """A softmax with enough slices runs split (48 slices of 37×5, the strided layout); one with a single
    slice does not; both bit for bit like one thread."""
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], axis=1), helper.make_node("Softmax", ["s"], ["t"])],
                          "sm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [48, 37, 5]),
                                 helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 7])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [48, 37, 5]),
                           helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 7])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "sm.onnx")
    compile_model(tmp_path / "sm.onnx", tmp_path / "bundle", backends=("wasm",))
    rng = np.random.default_rng(5)
    feeds = {"x": (rng.standard_normal((48, 37, 5)) * 4).astype(np.float32), "s": rng.standard_normal((1, 7)).astype(np.float32)}
    one = harness.run_bundle(tmp_path / "bundle", feeds, runs=2, threads=1)
    two = harness.run_bundle(tmp_path / "bundle", feeds, runs=2, threads=2, profile_runs=2)
    assert [p["threads"] for p in two["profile"] if p["family"] == "softmax"] == [2, 1]
    for name, x in (("y", feeds["x"]), ("t", feeds["s"])):   # both over axis 1
        assert np.array_equal(two["outputs"][name], one["outputs"][name]), name
        assert np.abs(two["outputs"][name] - ref_softmax(x)).max() <= 1e-6, name


def test_more_threads_than_cores_run_one_per_core(harness, big_matmul):
    """Uneven splits (3 parts, ...) are checked natively (tests/kernels/test_gemm_space.py); in the page
    a request above the core count runs one thread per core and says so."""
    import os
    cores = os.cpu_count()
    bundle, feeds, ref = big_matmul
    r = harness.run_bundle(bundle, feeds, runs=1, threads=cores + 1)
    assert r["info"]["threads"] == cores
    assert r["info"]["threadsReason"] == f"{cores + 1} threads requested, the device has {cores} cores: running {cores}"
    assert np.abs(r["outputs"]["z"] - ref).max() <= 1e-5 * np.abs(ref).max()


def test_threads_run_on_the_main_thread_too(harness, big_matmul):
    """{worker: false}: the page's main thread may not Atomics.wait, so its joins spin; the split gemm
    gives the Worker's outputs bit for bit."""
    bundle, feeds, ref = big_matmul
    one = harness.run_bundle(bundle, feeds, runs=1, threads=1)
    r = harness.run_bundle(bundle, feeds, runs=2, threads=2, worker=False, profile_runs=1)
    assert r["info"]["threads"] == 2 and r["info"]["threadsReason"] is None and r["ran_in"] == "Window"
    assert [p["threads"] for p in r["profile"] if p["family"] == "gemm"] == [2]
    assert np.array_equal(r["outputs"]["z"], one["outputs"]["z"])
    assert np.abs(r["outputs"]["z"] - ref).max() <= 1e-5 * np.abs(ref).max()


def on_page(harness, js: str, arg):
    """`js` (an async function of `arg`) evaluated in a fresh run.html page, closed after."""
    page = harness.open_page("run.html")
    try:
        return page.evaluate(js, arg)
    finally:
        page.close()


def pool_kernel(body: str) -> list[int]:
    """A module with only run_part(part, parts) = `body`, on one shared page, for a pool of its own."""
    import wasmtime

    return list(wasmtime.wat2wasm('(module (import "env" "memory" (memory 1 1 shared)) '
                                  f'(func (export "run_part") (param $part i32) (param $parts i32) {body}))'))


# A 2-thread pool on its own memory, its 'slot' loaded with the kernel the test passes; calls give up
# after 0.3 s.
POOL_JS = """async (kernel) => {
  const { ThreadPool } = await import('/nnjit/backends/wasm_threads.js');
  const { CTL } = await import('/nnjit/backends/wasm_ctl.js');
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const pool = await ThreadPool.create(memory, 2);
  pool.stallMs = 300;
  const slot = await pool.slotOf(await WebAssembly.compile(new Uint8Array(kernel)));
"""

STALL_JS = POOL_JS + """
  const errors = [];
  for (let i = 0; i < 2; i++) {
    try {
      pool.run(slot, () => {}, []);
      errors.push(null);
    } catch (e) {
      errors.push({ name: e.name, message: e.message });
    }
  }
  return errors;
}"""


def test_a_helper_that_stops_answering_is_a_named_error_not_a_hang(harness):
    """The page's main thread joins by spinning: a helper stuck in its part must end the wait with a
    BackendError, and the pool must refuse later calls rather than run them on the threads left."""
    errors = on_page(harness, STALL_JS, pool_kernel("(loop $l (br $l))"))   # a part that never ends
    assert [e and e["name"] for e in errors] == ["BackendError", "BackendError"], errors
    for e in errors:
        assert "the wasm threads stopped answering: 1 of 1 helper(s) did not finish a call within 0.3 s" in e["message"], errors


LATE_NOTIFY_JS = POOL_JS + """
  const runs = new Int32Array(memory.buffer, 64, 2);  // runs of part 0 and part 1 (the kernel counts them)
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const seen = [];
  let error = null;
  try {
    pool.run(slot, () => Atomics.add(runs, 0, 1), []);
    await sleep(20);  // the helper has spun out and sleeps on GEN
    Atomics.notify(pool.ctl, CTL.GEN);  // the call's notify, arriving late
    await sleep(20);
    seen.push(Array.from(runs), Atomics.load(pool.ctl, CTL.REMAIN));
    pool.run(slot, () => Atomics.add(runs, 0, 1), []);
    seen.push(Array.from(runs));
  } catch (e) {
    error = e.message;
  } finally {
    pool.destroy();
  }
  return { seen, error };
}"""


def test_a_late_notify_is_not_a_second_job(harness):
    """The coordinator bumps the job generation, then notifies; if it loses its core in between, the
    helper may run the job, spin, sleep, and only then get the notify. That wake-up is no job: the
    helper must not run the part again (a second decrement left REMAIN at -1 and the next call hung)."""
    count = pool_kernel("(drop (i32.atomic.rmw.add (i32.add (i32.const 64) (i32.shl (local.get $part) (i32.const 2))) (i32.const 1)))")
    r = on_page(harness, LATE_NOTIFY_JS, count)
    assert r["error"] is None, r
    assert r["seen"] == [[1, 1], 0, [2, 2]], r


STREAM_JS = """async ({ url, xs }) => {
  const { Session } = await import('/nnjit/index.js');
  const s = await Session.create(url, { threads: 2 });
  const out = [];
  try {
    for (const x of xs) out.push(Array.from((await s.run({ x: Float32Array.from(x) })).z.data));
    return { threads: s.info.threads, out };
  } finally {
    await s.release();
  }
}"""


def test_every_split_run_computes_its_own_inputs(harness, big_matmul):
    """The threads deal a split gemm's row tiles out from a counter in the shared memory that the runtime
    zeroes before each call: runs on different inputs, one after another, each get their own product
    (with a counter left over from the run before, a run would compute nothing and return stale rows)."""
    bundle, _, _ = big_matmul
    rng = np.random.default_rng(12)
    xs = [rng.standard_normal((300, 256)).astype(np.float32) for _ in range(3)]
    one = [harness.run_bundle(bundle, {"x": x}, runs=1)["outputs"]["z"] for x in xs]
    manifest = read_manifest(bundle)
    step = manifest["steps"][0]
    assert step["family"] == "gemm"
    configs = [k["config"] for k in manifest["kernels"] if k["id"] in step["candidates"]["wasm"]]
    assert configs and all(-(-c["M"] // c["mr"]) >= -(-c["N"] // c["nr"]) for c in configs)  # cut by row tasks
    with harness.mounted(bundle) as url:
        r = on_page(harness, STREAM_JS, {"url": url, "xs": [x.ravel().tolist() for x in xs]})
    assert r["threads"] == 2
    for got, want in zip(r["out"], one):
        assert np.array_equal(np.asarray(got, dtype=np.float32).reshape(want.shape), want)
    assert not np.array_equal(one[0], one[1])
