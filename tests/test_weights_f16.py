"""weights.bin in half floats (--weights f16): half the file, float32 compute, exact against a model
whose weights were rounded to half, natively and in Chromium (wasm and WebGPU)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from nnjit.bench import zoo
from nnjit.bench.decoder_ref import OrtDecoder, round_weights_f16
from nnjit.compiler.bundle import BundleError, load_bundle, read_manifest
from nnjit.compiler.decoder import compile_decoder
from nnjit.compiler.generate import Decoder, Sampling
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

PROMPT = [464, 3290, 318, 257, 1332, 11, 12, 13, 14, 15]


@pytest.fixture(scope="module")
def tiny16(tmp_path_factory):
    d = tmp_path_factory.mktemp("f16")
    src = zoo.cached("gpt2-tiny")
    s = compile_decoder(src, d / "b", max_context=64, prefill_len=8, weights_format="f16")
    return src, d / "b", s, round_weights_f16(src, d / "rounded.onnx")


def test_decoder_file_halves_and_matches_the_rounded_model(tiny16):
    src, b, s, rounded = tiny16
    assert s["weights_file_bytes"] < 0.52 * s["weights_bytes"]
    w = read_manifest(b)["weights"]
    assert w["encoding"] == "f16" and w["bytes"] == s["weights_bytes"]
    r = Decoder(NativeSession(b)).run(PROMPT, Sampling(max_new_tokens=24))
    ref = OrtDecoder(rounded).greedy(PROMPT, 24)
    assert r["tokens"] == ref["tokens"]
    assert np.abs(r["logits"] - ref["logits"]).max() <= 1e-4 * np.abs(ref["logits"]).max()
    # Against the float32 model the difference is half's rounding of the weights, not more.
    full = OrtDecoder(src).greedy(PROMPT, 1)["logits"][0]
    assert 0 < np.abs(r["logits"][0] - full).max() <= 2e-2 * np.abs(full).max()


def test_plain_model_f16(tmp_path):
    src = zoo.cached("mlp")
    s = compile_model(src, tmp_path / "b", backends=["wasm"], weights="f16")
    assert s["weights_file_bytes"] < 0.52 * s["weights_bytes"]
    x = np.random.default_rng(0).standard_normal((32, 784)).astype(np.float32)
    got = NativeSession(tmp_path / "b").run({"input": x})["logits"]
    import onnxruntime as ort
    want = ort.InferenceSession(str(round_weights_f16(src, tmp_path / "r.onnx"))).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("field, value, msg", [
    ("file_bytes", 12, "weights.file_bytes"),
    ("segments", [[0, 8, "f16"]], "weights.segments"),
    ("encoding", "bf16", "weights.encoding"),
])
def test_bad_encoding_fields_are_named(tiny16, tmp_path, field, value, msg):
    import shutil
    _, b, _, _ = tiny16
    copy = shutil.copytree(b, tmp_path / "t")
    m = json.loads((copy / "manifest.json").read_text())
    m["weights"][field] = value
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match=msg):
        load_bundle(copy)
