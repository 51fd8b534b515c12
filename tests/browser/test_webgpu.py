"""The runtime's webgpu backend: Chromium's SwiftShader adapter (--enable-unsafe-webgpu), Chromium
without WebGPU, Firefox ESR on lavapipe, the device-loss fallback to wasm, and the drivers' options."""
from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from nnjit.bench.inputs import random_inputs
from nnjit.browsers.page_runner import PageError
from nnjit.browsers.server import REPO
from nnjit_test_bundles import W

pytestmark = pytest.mark.browser

# Creates a session with `options`, performs `actions` in order ({do: 'run'|'profile'|'lose', ...})
# and reports each one's result or error; the session is released at the end.
SCRIPT = """async ({ url, options, actions }) => {
  const nn = await import('/nnjit/index.js');
  const fail = (e) => ({ error: { name: e.name, message: e.message } });
  const feedsOf = (f) => Object.fromEntries(Object.entries(f).map(([k, v]) => [k, new globalThis[v.type](v.values)]));
  let session;
  try {
    session = await nn.Session.create(url, options);
  } catch (e) {
    return fail(e);
  }
  const created = session.info;
  const log = [];
  for (const a of actions) {
    try {
      if (a.do === 'run') {
        const out = await session.run(feedsOf(a.feeds));
        log.push({ stats: session.lastRunStats, info: session.info,
          outputs: Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { dims: t.dims, data: Array.from(t.data, Number) }])) });
      } else if (a.do === 'profile') {
        log.push({ profile: await session.profile(feedsOf(a.feeds), a.options), info: session.info });
      } else if (a.do === 'lose') {
        await session.debugLoseDeviceForTesting(a.options);
        log.push({ info: session.info });
      }
    } catch (e) {
      log.push(fail(e));
    }
  }
  await session.release();
  return { created, log };
}"""

RNG = np.random.default_rng(11)
X = RNG.standard_normal((2, 5), dtype=np.float32)
Y = RNG.standard_normal((2, 5), dtype=np.float32)
f32 = lambda a: {"type": "Float32Array", "values": a.ravel().tolist()}
MADD = {"x": f32(X), "y": f32(Y)}
RUN = {"do": "run", "feeds": MADD}


def drive(harness, bundle, actions, timeout_s=120, **options):
    page = harness.open_page("run.html")
    # Playwright's evaluate waits for its promise without a limit: a session that never settles (a
    # device loss the browser does not report) must fail the test, not hang the suite.
    race = (f"(args) => Promise.race([({SCRIPT})(args), new Promise((_, reject) => setTimeout("
            f"() => reject(new Error('the page gave no answer within {timeout_s} s')), {timeout_s * 1000}))])")
    try:
        with harness.mounted(bundle) as url:
            return page.evaluate(race, {"url": url, "options": options, "actions": actions})
    finally:
        page.close()


def z_of(entry):
    o = entry["outputs"]["z"]
    return np.array(o["data"], dtype=np.float32).reshape(o["dims"])


def test_madd_on_chromium_webgpu(gpu_harness, bundles):
    r = drive(gpu_harness, bundles["madd"], [RUN, RUN], backend="webgpu")
    info = r["created"]
    assert (info["backend"], info["requestedBackend"], info["fallbackReason"]) == ("webgpu", "webgpu", None)
    assert info["gpu"]["fallbackAdapter"] is True and info["gpu"]["timestampQuery"] is True
    # The WGSL kernels run; the wasm ones are loaded (and verified) for the fallback.
    assert info["kernelFiles"] == {"g0": "kernels/g0.wgsl", "g1": "kernels/g1.wgsl",
                                   "k0": "kernels/k0.relaxed.wasm", "k1": "kernels/k1.wasm"}
    # Its GPU buffers: weights (w, 10 floats), arena (x, y, z), staging (z), each padded to 4 bytes at least.
    assert info["memoryBytes"]["wasm"] is None and info["memoryBytes"]["gpu"] >= 5 * 40
    for entry in r["log"]:
        np.testing.assert_allclose(z_of(entry), X * Y + W, rtol=1e-6, atol=1e-6)
        assert entry["stats"]["backend"] == "webgpu" and entry["stats"]["ranIn"] == "DedicatedWorkerGlobalScope"


def test_one_tensor_in_two_bindings_and_sub_word_bools(gpu_harness, bundles):
    # x·x binds x twice: WebGPU rejects overlapping writable bindings, so the runtime reads a scratch copy.
    sq = drive(gpu_harness, bundles["square"], [{"do": "run", "feeds": {"x": f32(X)}}], backend="webgpu")
    np.testing.assert_allclose(z_of(sq["log"][0]), X * X + W, rtol=1e-6, atol=1e-6)
    bools = drive(gpu_harness, bundles["bools"], [{"do": "run", "feeds": {"x": {"type": "Uint8Array", "values": [1, 0, 1]}}}],
                  backend="webgpu", worker=False)
    assert bools["log"][0]["outputs"]["y"]["data"] == [0, 1, 0] and bools["log"][0]["stats"]["ranIn"] == "Window"


def test_profile_has_one_entry_per_step_with_both_timers(gpu_harness, bundles):
    prof = {"do": "profile", "feeds": MADD}
    r = drive(gpu_harness, bundles["madd"], [RUN, {**prof, "options": {"runs": 3}}, {**prof, "options": {"runs": 2, "timer": "submit"}}],
              backend="webgpu")
    for entry in r["log"][1:]:
        assert [(p["step"], p["kernel"], p["family"]) for p in entry["profile"]] == [(0, "g0", "test"), (1, "g1", "test")]
        assert all(isinstance(p["ms"], (int, float)) and p["ms"] >= 0 for p in entry["profile"])
        assert entry["info"]["backend"] == "webgpu"


def test_webgpu_without_an_adapter_is_a_backend_error_and_auto_runs_wasm(harness, bundles):
    # `harness` is Chromium without --enable-unsafe-webgpu: navigator.gpu exists, requestAdapter gives null.
    err = drive(harness, bundles["madd"], [RUN], backend="webgpu")["error"]
    assert err["name"] == "BackendError" and err["message"].startswith("WebGPU is not available: ")
    assert "no adapter" in err["message"]
    r = drive(harness, bundles["madd"], [RUN], backend="auto")
    assert r["created"]["backend"] == "wasm" and r["created"]["requestedBackend"] == "auto"
    assert r["created"]["fallbackReason"].startswith("WebGPU is not available")
    np.testing.assert_allclose(z_of(r["log"][0]), X * Y + W, rtol=1e-6, atol=1e-6)


def test_auto_on_a_wasm_only_bundle_runs_wasm_and_says_why(gpu_harness, bundles):
    r = drive(gpu_harness, bundles["ids"], [{"do": "run", "feeds": {"ids": {"type": "Int32Array", "values": [4, -1, 2]}}}], backend="auto")
    assert r["created"]["backend"] == "wasm" and "no webgpu kernel for step 0 (Test n0)" in r["created"]["fallbackReason"]
    assert r["log"][0]["outputs"]["f"]["data"] == [4, -1, 2]
    err = drive(gpu_harness, bundles["ids"], [], backend="webgpu")["error"]
    assert err["name"] == "BundleError" and "step 0 (Test n0) has no webgpu kernel" in err["message"]


def test_device_lost_between_runs_falls_back_to_wasm(gpu_harness, bundles):
    r = drive(gpu_harness, bundles["madd"], [RUN, {"do": "lose"}, RUN, RUN], backend="webgpu")
    first, _, after, later = r["log"]
    assert first["stats"]["backend"] == "webgpu"
    for entry in (after, later):
        np.testing.assert_allclose(z_of(entry), X * Y + W, rtol=1e-6, atol=1e-6)
        assert entry["stats"]["backend"] == "wasm" and entry["info"]["backend"] == "wasm"
    assert "the GPU device was lost (destroyed" in after["info"]["fallbackReason"]


def test_gpu_validation_error_falls_back_to_wasm(gpu_harness, bundles):
    r = drive(gpu_harness, bundles["madd"], [{"do": "lose", "options": {"byValidationError": True}}, RUN], backend="webgpu")
    np.testing.assert_allclose(z_of(r["log"][1]), X * Y + W, rtol=1e-6, atol=1e-6)
    assert r["log"][1]["stats"]["backend"] == "wasm"
    assert r["log"][1]["info"]["fallbackReason"].startswith("GPUValidationError: ")


def test_device_lost_during_a_run_resolves_that_run_on_wasm(gpu_harness, bundles):
    lose = {"do": "lose", "options": {"afterNextSubmit": True}}
    r = drive(gpu_harness, bundles["madd"], [lose, RUN, {"do": "profile", "feeds": MADD, "options": {"runs": 1}}], backend="webgpu")
    armed, pending, prof = r["log"]
    assert armed["info"]["backend"] == "webgpu"
    np.testing.assert_allclose(z_of(pending), X * Y + W, rtol=1e-6, atol=1e-6)
    assert pending["stats"]["backend"] == "wasm" and pending["info"]["fallbackReason"]
    assert [p["kernel"] for p in prof["profile"]] == ["k0", "k1"]


def test_lose_device_hook_on_a_wasm_session_is_a_backend_error(harness, bundles):
    err = drive(harness, bundles["madd"], [{"do": "lose"}])["log"][0]["error"]
    assert err["name"] == "BackendError" and "runs on wasm" in err["message"]


def test_invalid_wgsl_and_tampered_wgsl_are_bundle_errors(gpu_harness, bundles, tampered, tmp_path):
    b = shutil.copytree(bundles["madd"], tmp_path / "bad")
    src = (b / "kernels/g1.wgsl").read_text().replace("dst[g.x] = src[g.x];", "dst[g.x] = src[g.x] + 1.0;")
    (b / "kernels/g1.wgsl").write_text(src)
    m = json.loads((b / "manifest.json").read_text())
    for k in m["kernels"]:
        if k["id"] == "g1":
            k["sha256"] = hashlib.sha256(src.encode()).hexdigest()
    (b / "manifest.json").write_text(json.dumps(m))
    err = drive(gpu_harness, b, [], backend="webgpu")["error"]
    assert err["name"] == "BundleError" and "kernels/g1.wgsl: invalid WGSL at line 6" in err["message"]
    err = drive(gpu_harness, tampered("kernels/g0.wgsl"), [], backend="webgpu")["error"]
    assert err["name"] == "BundleError" and "kernels/g0.wgsl: sha256 mismatch" in err["message"]


def edited(bundle, tmp_path, **tensor_t):
    """A copy of the madd bundle whose temp tensor t gets `tensor_t`, with z and the arena moved past it."""
    b = shutil.copytree(bundle, tmp_path / "edited")
    m = json.loads((b / "manifest.json").read_text())
    t = next(x for x in m["tensors"] if x["name"] == "t")
    z = next(x for x in m["tensors"] if x["name"] == "z")
    t.update(tensor_t)
    z["offset"] = t["offset"] + -(-t["bytes"] // 256) * 256
    m["memory"]["arena_bytes"] = z["offset"] + z["bytes"]
    (b / "manifest.json").write_text(json.dumps(m))
    return b


def test_misaligned_tensor_and_adapter_limits_are_named(gpu_harness, bundles, tmp_path):
    err = drive(gpu_harness, edited(bundles["madd"], tmp_path / "a", offset=576), [], backend="webgpu")["error"]
    assert err["name"] == "BundleError" and "tensor 3 (t) is at arena offset 576" in err["message"]
    assert "minStorageBufferOffsetAlignment 256" in err["message"]
    huge = 3 << 29  # 1.5 GiB, over SwiftShader's 1 GiB maxBufferSize; nothing that large is allocated
    err = drive(gpu_harness, edited(bundles["madd"], tmp_path / "b", bytes=huge, shape=[huge // 4]), [], backend="webgpu")["error"]
    assert err["name"] == "BackendError" and "the arena buffer needs" in err["message"] and "maxBufferSize 1073741824" in err["message"]


# serial: Firefox's lavapipe device loss, sharing the two cores with a parallel test worker, once never
# settled (the suite hung); alone it settles within a second.
@pytest.mark.serial
def test_madd_and_device_loss_on_firefox_webgpu(firefox_harness, bundles):
    r = drive(firefox_harness, bundles["madd"], [RUN, {"do": "lose", "options": {"afterNextSubmit": True}}, RUN], backend="webgpu")
    assert r["created"]["backend"] == "webgpu" and r["created"]["gpu"]["fallbackAdapter"] is True
    first, _, pending = r["log"]
    np.testing.assert_allclose(z_of(first), X * Y + W, rtol=1e-6, atol=1e-6)
    assert first["stats"]["backend"] == "webgpu"
    np.testing.assert_allclose(z_of(pending), X * Y + W, rtol=1e-6, atol=1e-6)
    assert pending["stats"]["backend"] == "wasm" and pending["info"]["fallbackReason"]


@pytest.mark.serial
def test_binding_over_the_adapter_limit_is_named_on_firefox(firefox_harness, bundles, tmp_path):
    # Firefox's lavapipe adapter binds at most 128 MiB, in buffers of up to 1 GiB.
    big = 200 << 20
    err = drive(firefox_harness, edited(bundles["madd"], tmp_path, bytes=big, shape=[big // 4]), [], backend="webgpu")["error"]
    assert err["name"] == "BackendError" and "step 0 (Test n0): tensor 3 (t) needs a 209715200-byte binding" in err["message"]
    assert "maxStorageBufferBindingSize 134217728" in err["message"]


def test_page_runner_backend_option(gpu_harness, bundles):
    inputs = random_inputs([{"name": "x", "dtype": "float32", "shape": [2, 5]}, {"name": "y", "dtype": "float32", "shape": [2, 5]}], 4)
    r = gpu_harness.run_bundle(bundles["madd"], inputs, runs=2, backend="webgpu", profile_runs=1)
    np.testing.assert_allclose(r["outputs"]["z"], inputs["x"] * inputs["y"] + W, rtol=1e-6, atol=1e-6)
    assert r["backend"] == "webgpu" and r["fallback_reason"] is None and r["browser"] == "chromium"
    assert [p["kernel"] for p in r["profile"]] == ["g0", "g1"]
    with pytest.raises(PageError) as e:
        gpu_harness.run_bundle(bundles["madd"], inputs, runs=1, backend="cuda")
    assert e.value.name == "BackendError" and '"cuda"' in e.value.message


@pytest.mark.skipif(not (REPO / "node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs").is_file(), reason="run `npm ci` first")
def test_ort_web_webgpu_peer(gpu_harness, madd_model):
    inputs = {"x": X, "y": Y}
    r = gpu_harness.run_ort(madd_model, inputs, runs=2, ep="webgpu")
    np.testing.assert_allclose(r["outputs"]["z"], X * Y + W, rtol=1e-6, atol=1e-6)
    assert r["info"]["backend"] == "ort-webgpu" and r["info"]["version"] == "1.30.0"


def test_a_webgpu_only_bundle_runs_on_webgpu_and_names_wasm(gpu_harness, harness, tmp_path):
    """--backend webgpu alone: the GPU session must not ask for wasm kernels it was never given."""
    import numpy as np

    from nnjit.bench import zoo
    from nnjit.browsers.page_runner import PageError
    from nnjit.compiler.pipeline import compile_model

    compile_model(zoo.cached("mlp"), tmp_path / "b", backends=["webgpu"])
    x = np.random.default_rng(1).standard_normal((32, 784)).astype(np.float32)
    r = gpu_harness.run_bundle(tmp_path / "b", {"input": x}, runs=1, backend="webgpu")
    assert r["backend"] == "webgpu" and r["outputs"]["logits"].shape == (32, 10)
    with pytest.raises(PageError, match="webgpu kernels only") as e:
        harness.run_bundle(tmp_path / "b", {"input": x}, runs=1, backend="wasm")
    assert e.value.name == "BackendError"
