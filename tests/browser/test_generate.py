"""Session.generate in headless Chromium: gpt2-tiny on wasm (1 and 2 threads) and WebGPU
(SwiftShader) against onnxruntime, streaming, sampling, named errors."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.bench import zoo
from nnjit.bench.decoder_ref import OrtDecoder, round_weights_f16
from nnjit.browsers.generate_page import generate_in_page
from nnjit.browsers.page_runner import PageError
from nnjit.compiler.decoder import compile_decoder
from nnjit.compiler.generate import Decoder, Sampling
from nnjit.compiler.native_runtime import NativeSession

pytestmark = pytest.mark.browser
PROMPT = [464, 3290, 318, 257, 1332, 11, 12, 13, 14, 15, 16, 17, 18]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    onnx_path = zoo.cached("gpt2-tiny")
    out = tmp_path_factory.mktemp("gpt2tiny-web")
    compile_decoder(onnx_path, out, max_context=64, prefill_len=8)
    return onnx_path, out, OrtDecoder(onnx_path).greedy(PROMPT, 24)


def _rel_err(a, b):
    n = min(len(a), len(b))
    return float((np.abs(a[:n] - b[:n]).max(axis=1) / np.abs(b[:n]).max(axis=1)).max())


@pytest.mark.parametrize("threads", [1, 2])
def test_wasm_greedy_matches_onnxruntime(harness, tiny, threads):
    _, out, ref = tiny
    streamed = []
    v = generate_in_page(harness, out, PROMPT, Sampling(max_new_tokens=24), threads=threads, stream=streamed.append,
                         return_logits=True)
    assert v["tokens"] == ref["tokens"] == streamed
    assert _rel_err(v["logits"], ref["logits"]) <= 1e-3
    assert v["info"]["backend"] == "wasm" and v["info"]["threads"] == threads
    r = v["runs"][0]
    assert r["promptTokens"] == len(PROMPT) and r["prefillTokensPerS"] > 0 and r["decodeTokensPerS"] > 0


def test_webgpu_greedy_matches_onnxruntime(gpu_harness, tiny):
    _, out, ref = tiny
    v = generate_in_page(gpu_harness, out, PROMPT, Sampling(max_new_tokens=24), return_logits=True, backend="webgpu")
    assert v["info"]["backend"] == "webgpu"
    assert v["tokens"] == ref["tokens"] and _rel_err(v["logits"], ref["logits"]) <= 1e-3


def test_seeded_sampling_repeats_and_stays_in_top_k(harness, tiny):
    _, out, _ = tiny
    s = Sampling(max_new_tokens=10, temperature=0.9, top_k=4, seed=11)
    a = generate_in_page(harness, out, PROMPT, s, return_logits=True)
    b = generate_in_page(harness, out, PROMPT, s)
    assert a["tokens"] == b["tokens"]
    for tok, lg in zip(a["tokens"], a["logits"]):
        assert tok in np.argsort(-lg)[:4]
    # The page's stop ids end generation at the first one picked.
    first = Decoder(NativeSession(out)).run(PROMPT, Sampling(max_new_tokens=1))["tokens"][0]
    c = generate_in_page(harness, out, PROMPT, Sampling(max_new_tokens=10, stop=[first]))
    assert c["tokens"] == [first]


@pytest.mark.parametrize("prompt, max_new, msg", [
    (list(range(60)), 8, "exceed the bundle's max context of 64"),
    ([1, 50257], 1, "token id 50257 is outside the vocabulary"),
    ([1.5, 2], 1, "expected integer token ids"),
])
def test_bad_prompts_are_input_errors(harness, tiny, prompt, max_new, msg):
    _, out, _ = tiny
    with pytest.raises(PageError, match=msg) as e:
        generate_in_page(harness, out, prompt, Sampling(max_new_tokens=max_new))
    assert e.value.name == "InputError"


def test_page_tokenizer_matches_the_python_tokenizers(harness, tiny):
    """web_runtime/tokenizer.js (@huggingface/tokenizers on the bundle's tokenizer.json) encodes and
    decodes as the `tokenizers` package does, so text in the page gives the CLI's tokens."""
    from tokenizers import Tokenizer

    _, out, _ = tiny
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    for text in ["def forward(self, x):\n    return x * 2", "Ünïcødé — “quotes” 🙂 and  spaces"]:
        v = generate_in_page(harness, out, text, Sampling(max_new_tokens=6))
        ids = tok.encode(text, add_special_tokens=False).ids
        assert v["promptIds"] == ids
        assert v["tokens"] == Decoder(NativeSession(out)).run(ids, Sampling(max_new_tokens=6))["tokens"]
        assert v["text"] == tok.decode(v["tokens"])


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_f16_weights_expand_in_the_page(harness, gpu_harness, tmp_path_factory, backend):
    """A --weights f16 bundle (half the download) generates the rounded model's tokens on both backends."""
    d = tmp_path_factory.mktemp("f16web")
    src = zoo.cached("gpt2-tiny")
    compile_decoder(src, d / "b", max_context=64, prefill_len=8, weights_format="f16")
    ref = OrtDecoder(round_weights_f16(src, d / "r.onnx")).greedy(PROMPT, 12)
    h = gpu_harness if backend == "webgpu" else harness
    v = generate_in_page(h, d / "b", PROMPT, Sampling(max_new_tokens=12), return_logits=True, backend=backend)
    assert v["info"]["backend"] == backend and v["tokens"] == ref["tokens"]
    assert np.abs(v["logits"] - ref["logits"]).max() <= 1e-4 * np.abs(ref["logits"]).max()


@pytest.fixture(scope="module")
def p32(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("p32web")
    compile_decoder(tiny[0], out, max_context=64, prefill_len=32, backends=["wasm"])
    return out


@pytest.mark.parametrize("n", [2, 34])
def test_short_last_chunk_in_the_page(harness, tiny, p32, n):
    onnx_path, out = tiny[0], p32
    prompt = [int(x) for x in np.random.default_rng(n).integers(100, 5000, n)]
    v = generate_in_page(harness, out, prompt, Sampling(max_new_tokens=4), return_logits=True)
    ref = OrtDecoder(onnx_path).greedy(prompt, 4)
    assert v["tokens"] == ref["tokens"] and _rel_err(v["logits"], ref["logits"]) <= 1e-3


def test_profile_of_the_decode_plan(harness, tiny):
    """Session.profile(feeds, {plan: 'decode'}) times every step of the one-token plan."""
    from nnjit.compiler.bundle import read_manifest

    _, out, _ = tiny
    v = generate_in_page(harness, out, PROMPT, Sampling(max_new_tokens=2), profile_decode=3)
    steps = read_manifest(out)["decoder"]["decode"]["steps"]
    assert [p["step"] for p in v["profile"]] == [s["id"] for s in steps]
    assert {p["family"] for p in v["profile"]} >= {"attention", "kvwrite", "gemm"}
    assert all(p["ms"] >= 0 for p in v["profile"])
