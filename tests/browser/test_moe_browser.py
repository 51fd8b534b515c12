"""The MoE parameter committee (docs/moe.md) in headless Chromium through Session.create({moe}): swap,
substitute and skip give the native runtime's bits (plain SIMD on both sides), the compacted wasm
memory and the swap count; bad options come back as InputError from the worker."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.bench import zoo, zoo_moe
from nnjit.compiler.moe_plan import plan as make_plan
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

pytestmark = pytest.mark.browser

B = 7

RUN_JS = """async ({ url, xs, options }) => {
  const nn = await import('/nnjit/index.js');
  let session;
  try {
    session = await nn.Session.create(url, options);
  } catch (e) {
    return { error: { name: e.name, message: e.message, input: e instanceof nn.InputError } };
  }
  const outputs = [];
  for (const x of xs) outputs.push(Array.from((await session.run({ input: new Float32Array(x) })).logits.data));
  const res = { outputs, info: session.info, stats: session.lastRunStats };
  await session.release();
  return res;
}"""


@pytest.fixture(scope="module")
def moe_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("moe") / "b"
    compile_model(zoo.cached("moe-digits"), out, {"input": [B, 64]}, backends=("wasm",))
    x_tr, _, x_te, _ = zoo_moe.digits_flat()
    return out, make_plan(out, {"input": x_tr[:140]}), [x_te[i * B:(i + 1) * B] for i in range(4)]


@pytest.fixture(scope="module")
def page(harness):
    p = harness.open_page("run.html")
    yield p
    p.close()


@pytest.mark.parametrize("moe", [{"residentExperts": 2, "policy": "swap"}, {"residentExperts": 4, "policy": "substitute"},
                                 {"residentExperts": 3, "policy": "skip"}])
def test_committee_in_chromium_equals_native(page, harness, moe_bundle, moe):
    bundle, plan, xs = moe_bundle
    moe = {**moe, "plan": plan}
    native = NativeSession(bundle, relaxed=False, moe=moe)
    want = [native.run({"input": x})["logits"].ravel() for x in xs]
    with harness.mounted(bundle) as url:
        r = page.evaluate(RUN_JS, {"url": url, "xs": [x.ravel().tolist() for x in xs],
                                   "options": {"moe": moe, "relaxedSimd": False, "tune": False, "threads": 1}})
    assert "error" not in r, r
    for got, w in zip(r["outputs"], want):
        assert np.array_equal(np.asarray(got, np.float32), w)
    info = r["info"]["moe"]
    assert info["wasmMemoryBytes"] == native.manifest["memory"]["total_bytes"]
    assert info["residentExperts"] == moe["residentExperts"] and info["committee"][0] == native.moe.layers[0].committee
    assert r["stats"]["moe"]["swaps"] == native.moe.swaps


def test_bad_budget_is_an_input_error_in_chromium(page, harness, moe_bundle):
    with harness.mounted(moe_bundle[0]) as url:
        r = page.evaluate(RUN_JS, {"url": url, "xs": [], "options": {"moe": {"budgetBytes": 100}, "tune": False}})
    assert r["error"]["name"] == "InputError" and r["error"]["input"]
    assert "moe.budgetBytes: expected at least one expert" in r["error"]["message"]


def test_moe_bundle_on_webgpu_in_chromium(gpu_harness, tmp_path):
    """The WGSL moe kernel through Chromium's WebGPU (SwiftShader, Tint's stricter validation)."""
    compile_model(zoo.cached("moe-digits"), tmp_path / "b", {"input": [B, 64]}, backends=("wasm", "webgpu"))
    xs = [zoo_moe.digits_flat()[2][:B]]
    page = gpu_harness.open_page("run.html")
    try:
        with gpu_harness.mounted(tmp_path / "b") as url:
            r = page.evaluate(RUN_JS, {"url": url, "xs": [x.ravel().tolist() for x in xs],
                                       "options": {"backend": "webgpu", "tune": False}})
    finally:
        page.close()
    assert "error" not in r, r
    assert r["info"]["backend"] == "webgpu" and r["info"]["fallbackReason"] is None
    import onnxruntime as ort
    want = ort.InferenceSession(str(zoo.cached("moe-digits")), providers=["CPUExecutionProvider"]).run(
        None, {"input": xs[0]})[0]
    got = np.asarray(r["outputs"][0], np.float32).reshape(want.shape)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
