"""The web runtime (web_runtime/) in headless Chromium, driven from a page through dynamic import."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from nnjit_test_bundles import W

pytestmark = pytest.mark.browser

# Creates a session, runs each entry of `runs` (input name → {type, values, dims?}) in turn and
# reports outputs or the error of each; the error's classes are checked with instanceof on the page.
RUN_JS = """async ({ url, runs, options, releaseFirst }) => {
  const nn = await import('/nnjit/index.js');
  const classes = { NnjitError: nn.NnjitError, BundleError: nn.BundleError, InputError: nn.InputError, BackendError: nn.BackendError };
  const fail = (e) => ({ error: { name: e.name, message: e.message,
    classes: Object.keys(classes).filter((n) => e instanceof classes[n]) } });
  const make = ({ type, values, dims }) => {
    const data = type === 'Array' ? values : type === 'BigInt64Array' ? BigInt64Array.from(values, BigInt) : new globalThis[type](values);
    return dims ? { data, dims } : data;
  };
  let session;
  try {
    session = await nn.Session.create(url, options);
  } catch (e) {
    return fail(e);
  }
  const results = [];
  if (releaseFirst) await session.release();
  for (const feeds of runs) {
    try {
      const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, make(f)])));
      results.push({ stats: session.lastRunStats, outputs: Object.fromEntries(Object.entries(out).map(([k, t]) =>
        [k, { dims: t.dims, dtype: t.dtype, type: t.data.constructor.name, data: Array.from(t.data, Number) }])) });
    } catch (e) {
      results.push(fail(e));
    }
  }
  const info = session.info;
  await session.release();
  return { info, inputs: session.inputs, results };
}"""

RNG = np.random.default_rng(1)
X = RNG.standard_normal((2, 5), dtype=np.float32)
Y = RNG.standard_normal((2, 5), dtype=np.float32)
GOOD = {"x": {"type": "Float32Array", "values": X.ravel().tolist()}, "y": {"type": "Float32Array", "values": Y.ravel().tolist()}}


@pytest.fixture(scope="module")
def page(harness):
    p = harness.open_page("run.html")
    yield p
    p.close()


def run_in_page(page, harness, bundle, runs, **options):
    with harness.mounted(bundle) as url:
        return page.evaluate(RUN_JS, {"url": url, "runs": runs, "options": options, "releaseFirst": False})


def output(result, name="z"):
    o = result["outputs"][name]
    return np.array(o["data"], dtype=np.float32).reshape(o["dims"])


def test_outputs_are_correct_and_kernels_run_in_a_worker(page, harness, bundles):
    r = run_in_page(page, harness, bundles["madd"], [GOOD, GOOD])
    assert r["inputs"] == [{"name": "x", "dtype": "float32", "shape": [2, 5]}, {"name": "y", "dtype": "float32", "shape": [2, 5]}]
    for res in r["results"]:
        np.testing.assert_allclose(output(res), X * Y + W, rtol=1e-6, atol=1e-6)
        assert res["outputs"]["z"]["type"] == "Float32Array" and res["outputs"]["z"]["dtype"] == "float32"
        # The scope that called the kernels reports itself: a worker, never the page's Window.
        assert res["stats"]["ranIn"] == "DedicatedWorkerGlobalScope"
    assert r["info"]["worker"] is True
    held = r["info"]["memoryBytes"]  # the wasm memory: whole 64 KiB pages, no GPU buffers
    assert held["gpu"] is None and held["wasm"] >= 65536 and held["wasm"] % 65536 == 0


def test_main_thread_fallback_is_explicit(page, harness, bundles):
    r = run_in_page(page, harness, bundles["madd"], [GOOD], worker=False)
    np.testing.assert_allclose(output(r["results"][0]), X * Y + W, rtol=1e-6, atol=1e-6)
    assert r["results"][0]["stats"]["ranIn"] == "Window"


def test_relaxed_simd_variant_is_selected_and_can_be_turned_off(page, harness, bundles):
    auto = run_in_page(page, harness, bundles["madd"], [GOOD])
    assert auto["info"]["relaxedSimd"] is True  # Chromium 156 ships relaxed SIMD
    assert auto["info"]["kernelFiles"] == {"k0": "kernels/k0.relaxed.wasm", "k1": "kernels/k1.wasm"}
    plain = run_in_page(page, harness, bundles["madd"], [GOOD], relaxedSimd=False)
    assert plain["info"]["relaxedSimd"] is False
    assert plain["info"]["kernelFiles"] == {"k0": "kernels/k0.wasm", "k1": "kernels/k1.wasm"}
    np.testing.assert_allclose(output(plain["results"][0]), output(auto["results"][0]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("feeds, expected", [
    ({**GOOD, "q": GOOD["x"]}, ['unknown input "q"', '"x", "y"']),
    ({"x": GOOD["x"]}, ['missing input "y"', "float32 [2, 5]"]),
    ({**GOOD, "y": {"type": "Float32Array", "values": [1.0] * 9}}, ['input "y"', "expected 10 elements", "got 9"]),
    ({**GOOD, "y": {**GOOD["y"], "dims": [5, 2]}}, ['input "y"', "expected dims [2, 5]", "got [5, 2]"]),
    ({**GOOD, "x": {"type": "Float64Array", "values": X.ravel().tolist()}}, ['input "x"', "expected float32", "got Float64Array"]),
    ({**GOOD, "x": {"type": "Int32Array", "values": [1] * 10}}, ['input "x"', "got Int32Array"]),
])
def test_bad_feeds_raise_input_error_naming_the_input(page, harness, bundles, feeds, expected):
    # The bad run fails on the page; the session stays usable for the good run after it.
    r = run_in_page(page, harness, bundles["madd"], [feeds, GOOD])
    err = r["results"][0]["error"]
    assert err["name"] == "InputError" and err["classes"] == ["NnjitError", "InputError"]
    for part in expected:
        assert part in err["message"]
    np.testing.assert_allclose(output(r["results"][1]), X * Y + W, rtol=1e-6, atol=1e-6)


def test_int64_inputs_accept_bigint64_int32_and_numbers(page, harness, bundles):
    vals = [-3, 0, 7]
    runs = [{"ids": {"type": t, "values": vals}} for t in ("BigInt64Array", "Int32Array", "Array")]
    runs.append({"ids": {"type": "Array", "values": [1.5, 0, 0]}})
    r = run_in_page(page, harness, bundles["ids"], runs)
    for res in r["results"][:3]:
        assert res["outputs"]["f"]["data"] == vals
    err = r["results"][3]["error"]
    assert err["name"] == "InputError" and 'input "ids"' in err["message"] and "int64" in err["message"]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("rel", ["weights.bin", "kernels/k0.relaxed.wasm", "kernels/k1.wasm"])
def test_tampered_file_is_a_bundle_error_naming_file_and_digests(page, harness, tampered, rel):
    bundle = tampered(rel)
    manifest = json.loads((bundle / "manifest.json").read_text())
    expected = manifest["weights"]["sha256"] if rel == "weights.bin" else next(
        (k["relaxed"] or {}).get("sha256") if rel.endswith("relaxed.wasm") else k["sha256"]
        for k in manifest["kernels"] if rel.startswith(f"kernels/{k['id']}."))
    err = run_in_page(page, harness, bundle, [GOOD])["error"]
    # Loading happens in the worker: the class survives the trip to the page.
    assert err["name"] == "BundleError" and "BundleError" in err["classes"]
    assert rel in err["message"] and expected in err["message"] and _digest(bundle / rel) in err["message"]


def test_unused_variant_is_not_fetched(page, harness, tampered):
    # With relaxed SIMD off, the (tampered) relaxed file is never loaded, so the bundle still runs.
    r = run_in_page(page, harness, tampered("kernels/k0.relaxed.wasm"), [GOOD], relaxedSimd=False)
    np.testing.assert_allclose(output(r["results"][0]), X * Y + W, rtol=1e-6, atol=1e-6)


def test_wrong_version_and_missing_files_are_bundle_errors(page, harness, bundles, tmp_path):
    import shutil

    b = shutil.copytree(bundles["madd"], tmp_path / "b")
    m = json.loads((b / "manifest.json").read_text())
    (b / "manifest.json").write_text(json.dumps({**m, "version": 2}))
    err = run_in_page(page, harness, b, [GOOD])["error"]
    assert err["name"] == "BundleError" and "version 2" in err["message"] and "version 1" in err["message"]
    (b / "manifest.json").write_text(json.dumps(m))
    (b / "kernels" / "k1.wasm").unlink()
    err = run_in_page(page, harness, b, [GOOD])["error"]
    assert err["name"] == "BundleError" and "kernels/k1.wasm" in err["message"] and "404" in err["message"]


def test_tensors_in_the_runtimes_low_memory_are_a_bundle_error(page, harness, bundles, tmp_path):
    import shutil

    b = shutil.copytree(bundles["madd"], tmp_path / "b")
    m = json.loads((b / "manifest.json").read_text())
    (b / "manifest.json").write_text(json.dumps({**m, "memory": {**m["memory"], "weights_base": 0}}))
    err = run_in_page(page, harness, b, [GOOD])["error"]
    assert err["name"] == "BundleError" and "memory.weights_base (0)" in err["message"] and "[0, 64)" in err["message"]


def test_kernel_trap_is_a_backend_error_from_the_worker(page, harness, bundles):
    r = run_in_page(page, harness, bundles["trap"], [{"x": {"type": "Float32Array", "values": [1, 2, 3, 4]}}])
    err = r["results"][0]["error"]
    assert err["name"] == "BackendError" and "BackendError" in err["classes"]
    assert "step 0" in err["message"] and "k0" in err["message"] and "unreachable" in err["message"]


def test_released_session_rejects_runs(page, harness, bundles):
    with harness.mounted(bundles["madd"]) as url:
        r = page.evaluate(RUN_JS, {"url": url, "runs": [GOOD], "options": {}, "releaseFirst": True})
    err = r["results"][0]["error"]
    assert err["name"] == "BackendError" and "released" in err["message"]


def test_unknown_backend_is_a_backend_error(page, harness, bundles):
    err = run_in_page(page, harness, bundles["madd"], [GOOD], backend="cuda")["error"]
    assert err["name"] == "BackendError" and '"cuda"' in err["message"] and "wasm, webgpu, auto" in err["message"]


WAKE_JS = """async ({ url, x, runs, wakeEarly }) => {
  const nn = await import('/nnjit/index.js');
  const session = await nn.Session.create(url, { threads: 1, tune: false, wakeEarly });
  const feeds = { x: new Float32Array(x) };
  const first = (await session.run(feeds)).z.data;
  const via = [session.lastRunStats.via];
  const ms = [session.lastRunStats.computeMs];
  let same = true;
  for (let i = 1; i < runs; i++) {
    const z = (await session.run(feeds)).z.data;
    same &&= z.length === first.length && z.every((v, j) => v === first[j]);
    via.push(session.lastRunStats.via);
    ms.push(session.lastRunStats.computeMs);
  }
  await session.release();
  return { z: Array.from(first), via, ms, same };
}"""


@pytest.mark.serial  # timer- and scheduling-sensitive: alone, not beside another test's browser
def test_wake_early_takes_the_result_from_the_done_flag(page, harness, tmp_path):
    """Runs of 2 ms and more: the page thread wakes just before the run should end and takes the outputs
    when the worker's done flag says so, before the reply message; every run's outputs are the same and
    right, and {wakeEarly: false} always waits for the message."""
    import os

    import onnx
    from onnx import TensorProto, helper

    from nnjit.compiler.pipeline import compile_model

    rng = np.random.default_rng(5)
    w = rng.standard_normal((1024, 1024)).astype(np.float32)  # ~5 ms a run at 1 thread here
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["z"])], "mm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [128, 1024])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [128, 1024])],
                          [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "mm.onnx")
    compile_model(tmp_path / "mm.onnx", tmp_path / "b", backends=("wasm",))
    x = rng.standard_normal((128, 1024)).astype(np.float32)
    ref = x @ w
    for wake in (True, False):
        with harness.mounted(tmp_path / "b") as url:
            r = page.evaluate(WAKE_JS, {"url": url, "x": x.ravel().tolist(), "runs": 10, "wakeEarly": wake})
        assert r["same"]
        assert np.abs(np.array(r["z"], np.float32).reshape(ref.shape) - ref).max() <= 1e-4 * np.abs(ref).max()
        assert r["via"][0] == "message"  # no run time known yet
        if not wake:
            assert set(r["via"]) == {"message"}
        elif (os.cpu_count() or 1) > 1 and min(r["ms"]) >= 2:
            assert "flag" in r["via"], r  # a late timer (GC, load) falls back to the message


OUTPUTS_JS = """async ({ url, worker, x, y }) => {
  const nn = await import('/nnjit/index.js');
  const s = await nn.Session.create(url, { worker, tune: false });
  const feeds = { x: new Float32Array(x), y: new Float32Array(y) };
  const fresh = (await s.run(feeds)).z.data;
  const out = new Float32Array(10).fill(NaN);
  const first = await s.run(feeds, { outputs: { z: out } });
  const second = await s.run(feeds, { outputs: { z: out } });
  const errors = [];
  for (const bad of [{ z: new Float64Array(10) }, { z: new Float32Array(9) }, { w: new Float32Array(10) }, 5]) {
    try {
      await s.run(feeds, { outputs: bad });
      errors.push(null);
    } catch (e) {
      errors.push({ name: e.name, message: e.message });
    }
  }
  const after = (await s.run(feeds)).z.data;
  await s.release();
  return { same: first.z.data === out && second.z.data === out, out: Array.from(out), fresh: Array.from(fresh),
    after: Array.from(after), errors };
}"""


@pytest.mark.parametrize("worker", [True, False])
def test_outputs_written_into_the_callers_arrays(page, harness, bundles, worker):
    """run(feeds, {outputs}): the output lands in the caller's array (returned as its data), equal to a
    fresh run's; a wrong array or name is an InputError naming it, and the session stays usable."""
    with harness.mounted(bundles["madd"]) as url:
        r = page.evaluate(OUTPUTS_JS, {"url": url, "worker": worker, "x": X.ravel().tolist(), "y": Y.ravel().tolist()})
    assert r["same"] and r["out"] == r["fresh"] == r["after"]
    np.testing.assert_allclose(np.array(r["out"], np.float32).reshape(2, 5), X * Y + W, rtol=1e-6, atol=1e-6)
    names = [e and e["name"] for e in r["errors"]]
    assert names == ["InputError"] * 4
    msgs = [e["message"] for e in r["errors"]]
    assert "options.outputs.z: expected a Float32Array of 10 elements, got Float64Array of 10" in msgs[0]
    assert "got Float32Array of 9" in msgs[1]
    assert 'the model has no output "w" (outputs: z)' in msgs[2]
    assert "expected an object" in msgs[3]
