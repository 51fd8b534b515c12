"""Zoo models end to end: compiled, run in headless Chromium (and in wasmtime for a fast native
check), compared with onnxruntime on real data."""
import pytest

from nnjit.bench import datasets, zoo
from nnjit.bench.compare import native_outputs
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

from .op_cases import rel_err

pytestmark = pytest.mark.slow
TOL = 1e-4


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo-bundles")
    built = {}

    def get(name, shapes=None):
        key = (name, tuple(sorted((k, tuple(v)) for k, v in (shapes or {}).items())))
        if key not in built:
            out = root / f"{name}-{len(built)}"
            compile_model(zoo.cached(name), out, shapes)
            built[key] = out
        return built[key]
    return get


def _digits(bundles):
    x, y = datasets.digits_test()
    return bundles("digits-cnn", {"batch": [len(x)]}), x, y


def test_digits_cnn_native_accuracy_equals_onnxruntime(bundles):
    b, x, y = _digits(bundles)
    out = NativeSession(b).run({"input": x})["logits"]
    ref = native_outputs(zoo.cached("digits-cnn"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL
    assert (out.argmax(1) == y).mean() == (ref.argmax(1) == y).mean() >= 0.97


def test_mobilenetv2_native_top1(bundles):
    b = bundles("mobilenetv2")
    s = NativeSession(b)
    x = datasets.imagenet_photos()["chelsea"]
    out = s.run({"input": x})["logits"]
    ref = native_outputs(zoo.cached("mobilenetv2"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL and out.argmax() == ref.argmax()


def _minilm(bundles):
    feeds, sentences = datasets.minilm_sentences()
    shapes = {k: list(v.shape) for k, v in feeds.items()}
    return bundles("minilm-l6", shapes), feeds


def test_minilm_native_embeddings(bundles):
    b, feeds = _minilm(bundles)
    out = NativeSession(b).run(feeds)["last_hidden_state"]
    ref = native_outputs(zoo.cached("minilm-l6"), feeds)["last_hidden_state"]
    assert rel_err(out, ref) <= TOL
    e, r = (datasets.mean_pool(a, feeds["attention_mask"]) for a in (out, ref))
    assert (e * r).sum(1).min() >= 0.99999


@pytest.mark.browser
def test_digits_cnn_browser_accuracy_equals_native(bundles, harness):
    b, x, y = _digits(bundles)
    res = harness.run_bundle(b, {"input": x}, runs=1)
    out = res["outputs"]["logits"]
    ref = native_outputs(zoo.cached("digits-cnn"), {"input": x})["logits"]
    assert rel_err(out, ref) <= TOL
    assert (out.argmax(1) == y).mean() == (ref.argmax(1) == y).mean()
    assert res["worker"] and res["ran_in"] == "DedicatedWorkerGlobalScope"


@pytest.mark.browser
def test_mobilenetv2_browser_top1_on_photos(bundles, harness):
    b = bundles("mobilenetv2")
    for name, x in datasets.imagenet_photos().items():
        out = harness.run_bundle(b, {"input": x}, runs=1)["outputs"]["logits"]
        ref = native_outputs(zoo.cached("mobilenetv2"), {"input": x})["logits"]
        assert out.argmax() == ref.argmax(), name
        assert rel_err(out, ref) <= TOL, name


@pytest.mark.browser
def test_minilm_browser_embeddings(bundles, harness):
    b, feeds = _minilm(bundles)
    out = harness.run_bundle(b, feeds, runs=1)["outputs"]["last_hidden_state"]
    ref = native_outputs(zoo.cached("minilm-l6"), feeds)["last_hidden_state"]
    assert rel_err(out, ref) <= TOL
    e, r = (datasets.mean_pool(a, feeds["attention_mask"]) for a in (out, ref))
    assert (e * r).sum(1).min() >= 0.99999


@pytest.mark.browser
@pytest.mark.parametrize("name", ["mlp", "encoder-layer", "matmul-512"])
def test_bench_models_browser_match(bundles, harness, name):
    from nnjit.bench.inputs import random_inputs
    from nnjit.compiler.bundle import read_manifest
    b = bundles(name)
    feeds = random_inputs(read_manifest(b)["inputs"], seed=1)
    out = harness.run_bundle(b, feeds, runs=1)["outputs"]
    ref = native_outputs(zoo.cached(name), feeds)
    for k, r in ref.items():
        assert rel_err(out[k], r) <= TOL, k
