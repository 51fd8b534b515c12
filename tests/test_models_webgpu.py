"""Zoo models on the WebGPU backend: in headless Chromium (SwiftShader adapter) and Firefox
(lavapipe), and natively through wgpu-py, against onnxruntime on real data."""
import pytest

from nnjit.bench import datasets, zoo
from nnjit.bench.compare import native_outputs

from .op_cases import rel_err

pytestmark = pytest.mark.slow
TOL = 1e-3


def _digits(zoo_bundle, n=450):
    x, y = datasets.digits_test()
    return zoo_bundle("digits-cnn", {"batch": [n]}), x[:n], y[:n]


def _run_gpu(h, bundle, feeds):
    res = h.run_bundle(bundle, feeds, runs=1, backend="webgpu")
    assert res["backend"] == "webgpu", res["fallback_reason"]
    return res["outputs"]


@pytest.mark.browser
def test_digits_cnn_chromium_webgpu_accuracy(zoo_bundle, chromium_gpu):
    b, x, y = _digits(zoo_bundle)
    out = _run_gpu(chromium_gpu, b, {"input": x})["logits"]
    ref = native_outputs(zoo.cached("digits-cnn"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL
    assert (out.argmax(1) == y).mean() == (ref.argmax(1) == y).mean()


@pytest.mark.browser
def test_mobilenetv2_chromium_webgpu_top1(zoo_bundle, chromium_gpu):
    b = zoo_bundle("mobilenetv2")
    for name, x in datasets.imagenet_photos().items():
        out = _run_gpu(chromium_gpu, b, {"input": x})["logits"]
        ref = native_outputs(zoo.cached("mobilenetv2"), {"input": x})["logits"]
        assert out.argmax() == ref.argmax(), name
        assert rel_err(out, ref) <= TOL, name


@pytest.mark.browser
def test_minilm_chromium_webgpu_embeddings(zoo_bundle, chromium_gpu):
    feeds, _ = datasets.minilm_sentences()
    b = zoo_bundle("minilm-l6", {k: list(v.shape) for k, v in feeds.items()})
    out = _run_gpu(chromium_gpu, b, feeds)["last_hidden_state"]
    ref = native_outputs(zoo.cached("minilm-l6"), feeds)["last_hidden_state"]
    assert rel_err(out, ref) <= TOL
    e, r = (datasets.mean_pool(a, feeds["attention_mask"]) for a in (out, ref))
    assert (e * r).sum(1).min() >= 0.9999


@pytest.mark.browser
def test_digits_cnn_firefox_webgpu(zoo_bundle):
    from nnjit.browsers.page_runner import BrowserHarness
    b, x, y = _digits(zoo_bundle, 50)
    try:
        h = BrowserHarness(browser_name="firefox", webgpu=True, timeout_s=300).__enter__()
    except Exception as e:  # noqa: BLE001 - a missing or broken Firefox is an environment problem, named in the skip
        pytest.skip(f"Firefox could not start here: {e}")
    try:
        out = _run_gpu(h, b, {"input": x})["logits"]
    finally:
        h.__exit__(None, None, None)
    ref = native_outputs(zoo.cached("digits-cnn"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL and (out.argmax(1) == ref.argmax(1)).all()


def test_models_native_wgpu(zoo_bundle):
    pytest.importorskip("wgpu")
    from nnjit.compiler.gpu_runtime import GPUSession
    b, x, y = _digits(zoo_bundle)
    out = GPUSession(b).run({"input": x})["logits"]
    ref = native_outputs(zoo.cached("digits-cnn"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL and (out.argmax(1) == ref.argmax(1)).mean() > 0.99
    b = zoo_bundle("mobilenetv2")
    x = datasets.imagenet_photos()["coffee"]
    out = GPUSession(b).run({"input": x})["logits"]
    ref = native_outputs(zoo.cached("mobilenetv2"), {"input": x})["logits"]
    assert out.argmax() == ref.argmax() and rel_err(out, ref) <= TOL
