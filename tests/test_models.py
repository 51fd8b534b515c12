"""Zoo models end to end: compiled, run in headless Chromium (and in wasmtime for a fast native
check), compared with onnxruntime on real data."""
import pytest

from nnjit.bench import datasets, zoo
from nnjit.bench.compare import native_outputs
from nnjit.compiler.native_runtime import NativeSession

from .op_cases import rel_err

pytestmark = pytest.mark.slow
TOL = 1e-4


def _digits(zoo_bundle):
    x, y = datasets.digits_test()
    return zoo_bundle("digits-cnn", {"batch": [len(x)]}), x, y


def test_digits_cnn_native_accuracy_equals_onnxruntime(zoo_bundle):
    b, x, y = _digits(zoo_bundle)
    out = NativeSession(b).run({"input": x})["logits"]
    ref = native_outputs(zoo.cached("digits-cnn"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL
    assert (out.argmax(1) == y).mean() == (ref.argmax(1) == y).mean() >= 0.97


def test_mobilenetv2_native_top1(zoo_bundle):
    b = zoo_bundle("mobilenetv2")
    s = NativeSession(b)
    x = datasets.imagenet_photos()["chelsea"]
    out = s.run({"input": x})["logits"]
    ref = native_outputs(zoo.cached("mobilenetv2"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL and out.argmax() == ref.argmax()


def _minilm(zoo_bundle):
    feeds, sentences = datasets.minilm_sentences()
    shapes = {k: list(v.shape) for k, v in feeds.items()}
    return zoo_bundle("minilm-l6", shapes), feeds


def test_minilm_native_embeddings(zoo_bundle):
    b, feeds = _minilm(zoo_bundle)
    out = NativeSession(b).run(feeds)["last_hidden_state"]
    ref = native_outputs(zoo.cached("minilm-l6"), feeds)["last_hidden_state"]
    assert rel_err(out, ref) <= TOL
    e, r = (datasets.mean_pool(a, feeds["attention_mask"]) for a in (out, ref))
    assert (e * r).sum(1).min() >= 0.99999


@pytest.mark.browser
def test_digits_cnn_browser_accuracy_equals_native(zoo_bundle, harness):
    b, x, y = _digits(zoo_bundle)
    res = harness.run_bundle(b, {"input": x}, runs=1)
    out = res["outputs"]["logits"]
    ref = native_outputs(zoo.cached("digits-cnn"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL
    assert (out.argmax(1) == y).mean() == (ref.argmax(1) == y).mean()
    assert res["worker"] and res["ran_in"] == "DedicatedWorkerGlobalScope"


@pytest.mark.browser
def test_mobilenetv2_browser_top1_on_photos(zoo_bundle, harness):
    b = zoo_bundle("mobilenetv2")
    for name, x in datasets.imagenet_photos().items():
        out = harness.run_bundle(b, {"input": x}, runs=1)["outputs"]["logits"]
        ref = native_outputs(zoo.cached("mobilenetv2"), {"input": x})["logits"]
        assert out.argmax() == ref.argmax(), name
        assert rel_err(out, ref) <= TOL, name


@pytest.mark.browser
def test_minilm_browser_embeddings(zoo_bundle, harness):
    b, feeds = _minilm(zoo_bundle)
    out = harness.run_bundle(b, feeds, runs=1)["outputs"]["last_hidden_state"]
    ref = native_outputs(zoo.cached("minilm-l6"), feeds)["last_hidden_state"]
    assert rel_err(out, ref) <= TOL
    e, r = (datasets.mean_pool(a, feeds["attention_mask"]) for a in (out, ref))
    assert (e * r).sum(1).min() >= 0.99999


@pytest.mark.browser
@pytest.mark.parametrize("name", ["mlp", "encoder-layer", "matmul-512"])
def test_bench_models_browser_match(zoo_bundle, harness, name):
    from nnjit.bench.inputs import random_inputs
    from nnjit.compiler.bundle import read_manifest
    b = zoo_bundle(name)
    feeds = random_inputs(read_manifest(b)["inputs"], seed=1)
    out = harness.run_bundle(b, feeds, runs=1)["outputs"]
    ref = native_outputs(zoo.cached(name), feeds)
    for k, r in ref.items():
        assert rel_err(out[k], r) <= TOL, k
