"""Decoder bundles natively (wasmtime): KV-cache rewrite, prefill/decode plans, greedy generation
against onnxruntime and transformers, mask checks, sampling and bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nnjit.bench import zoo
from nnjit.bench import zoo_gpt2 as z
from nnjit.bench.decoder_ref import OrtDecoder
from nnjit.compiler.bundle import BundleError, check_manifest, read_manifest
from nnjit.compiler.decoder import compile_decoder
from nnjit.compiler.errors import InputError, UnsupportedOpError
from nnjit.compiler.generate import Decoder, Sampling
from nnjit.compiler.native_runtime import NativeSession

PROMPT = [464, 3290, 318, 257, 1332, 11, 12, 13, 14, 15, 16, 17, 18]  # 13 tokens: two prefill chunks of 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    onnx_path = zoo.cached("gpt2-tiny")
    out = tmp_path_factory.mktemp("gpt2tiny")
    summary = compile_decoder(onnx_path, out, max_context=64, prefill_len=8, backends=["wasm"])
    return onnx_path, out, summary


def _rel_err(a, b):
    return float((np.abs(a - b).max(axis=1) / np.abs(b).max(axis=1)).max())


def test_bundle_has_two_plans_and_kv_caches(tiny):
    _, out, s = tiny
    m = read_manifest(out)
    d = m["decoder"]
    assert s["layers"] == 2 and s["kv_cache_bytes"] == 2 * 2 * 4 * 64 * 32 * 4
    assert [i["name"] for i in m["inputs"]] == ["input_ids", "position_ids"]
    assert [i["shape"] for i in d["decode"]["inputs"]] == [[1, 1], [1, 1]]
    assert m["outputs"][0]["shape"] == [1, 1, z.VOCAB]  # prefill keeps only its last row's logits
    fams = [st["family"] for st in d["decode"]["steps"]]
    assert fams.count("attention") == 2 and fams.count("kvwrite") == 4
    assert not any(st["op"] == "Concat" for st in d["decode"]["steps"])
    # Both plans read one copy of the weights: the bundle is no larger than the ONNX file's initialisers.
    assert s["weights_bytes"] < 1.05 * zoo.cached("gpt2-tiny").stat().st_size
    # The caches sit at the same arena bytes in both plans (they persist from prefill into decode).
    tensors = m["tensors"]
    at = lambda ids: {(tensors[a]["name"], tensors[a]["offset"]) for a in ids if tensors[a]["name"].startswith("cache.")}
    caches = at(t for layer in d["layers"] for t in (layer["key"], layer["value"]))
    assert len(caches) == 4
    assert at(a for st in d["decode"]["steps"] for a in st["args"]) == caches
    assert at(a for st in m["steps"] for a in st["args"]) == caches


def test_greedy_matches_onnxruntime_and_transformers(tiny):
    onnx_path, out, _ = tiny
    r = Decoder(NativeSession(out)).run(PROMPT, Sampling(max_new_tokens=32))
    ref = OrtDecoder(onnx_path).greedy(PROMPT, 32)
    assert r["tokens"] == ref["tokens"]
    assert r["tokens"] == z.greedy_reference(z.load_gpt2_torch("gpt2-tiny"), PROMPT, 32)
    assert _rel_err(r["logits"], ref["logits"]) <= 1e-3


@pytest.mark.parametrize("n", [1, 7, 8, 9])
def test_prompt_lengths_around_the_prefill_chunk(tiny, n):
    onnx_path, out, _ = tiny
    prompt = PROMPT[:n] if n <= len(PROMPT) else PROMPT
    r = Decoder(NativeSession(out)).run(prompt, Sampling(max_new_tokens=4))
    ref = OrtDecoder(onnx_path).greedy(prompt, 4)
    assert r["tokens"] == ref["tokens"]
    assert _rel_err(r["logits"], ref["logits"]) <= 1e-3


def test_full_context(tiny):
    """Prompt + generation filling all 64 cache rows: the last decode attends over every row."""
    onnx_path, out, _ = tiny
    prompt = list(range(100, 160))
    r = Decoder(NativeSession(out)).run(prompt, Sampling(max_new_tokens=4))
    ref = OrtDecoder(onnx_path).greedy(prompt, 4)
    assert r["tokens"] == ref["tokens"] and _rel_err(r["logits"], ref["logits"]) <= 1e-3


def test_sampling_is_seeded_and_respects_top_k(tiny):
    _, out, _ = tiny
    d = Decoder(NativeSession(out))
    s = Sampling(max_new_tokens=8, temperature=0.8, top_k=5, seed=7)
    logits: list = []
    a = list(d.generate(PROMPT, s, logits))
    b = list(Decoder(NativeSession(out)).generate(PROMPT, s))
    assert a == b
    for tok, lg in zip(a, logits):
        assert tok in np.argsort(-lg)[:5]


def test_stop_token_ends_generation(tiny):
    _, out, _ = tiny
    first = Decoder(NativeSession(out)).run(PROMPT, Sampling(max_new_tokens=3))["tokens"][0]
    got = list(Decoder(NativeSession(out)).generate(PROMPT, Sampling(max_new_tokens=10, stop=[first])))
    assert got == [first]


@pytest.mark.parametrize("prompt, max_new, msg", [
    (list(range(60)), 5, "exceed the bundle's max context of 64"),
    ([1, 2, z.VOCAB], 1, f"token id {z.VOCAB} is outside the vocabulary"),
    ([1, -3], 1, "token id -3 is outside"),
    (np.array([1.0, 2.0]), 1, "expected integer token ids"),
    ([], 1, "non-empty"),
])
def test_bad_prompts_are_named(tiny, prompt, max_new, msg):
    _, out, _ = tiny
    with pytest.raises(InputError, match=msg):
        list(Decoder(NativeSession(out)).generate(prompt, Sampling(max_new_tokens=max_new)))


def test_tampered_decoder_section_is_named(tiny):
    _, out, _ = tiny
    m = read_manifest(out)
    weight = next(t["id"] for t in m["tensors"] if t["storage"] == "weight")
    m["decoder"]["layers"][0]["key"] = weight
    with pytest.raises(BundleError, match=r"decoder.layers\[0\].key"):
        check_manifest(m)
    m = read_manifest(out)
    m["decoder"]["decode"]["steps"][3]["args"][0] = 10**6
    with pytest.raises(BundleError, match=r"decoder.decode.steps\[3\].args\[0\]"):
        check_manifest(m)


def _export(tmp_path, visible, name):
    hf = z.load_gpt2_torch("gpt2-tiny", n_layer=1)
    path = tmp_path / f"{name}.onnx"
    z.export_decoder(hf, path, zoo._torch_export, zoo._save_onnx, visible)
    return path


def test_sliding_window_mask_is_derived_and_exact(tmp_path):
    path = _export(tmp_path, lambda k, q: (k[None, :] <= q[:, None]) & (k[None, :] > q[:, None] - 5), "window")
    s = compile_decoder(path, tmp_path / "b", max_context=32, prefill_len=4, backends=["wasm"])
    assert s["windows"] == [5]
    prompt = PROMPT[:11]
    r = Decoder(NativeSession(tmp_path / "b")).run(prompt, Sampling(max_new_tokens=12))
    ref = OrtDecoder(path).greedy(prompt, 12)
    assert r["tokens"] == ref["tokens"] and _rel_err(r["logits"], ref["logits"]) <= 1e-3


def test_non_causal_mask_is_refused(tmp_path):
    path = _export(tmp_path, lambda k, q: k[None, :] <= q[:, None] + 1, "peek")
    with pytest.raises(UnsupportedOpError, match="only causal"):
        compile_decoder(path, tmp_path / "b", max_context=16, prefill_len=4, backends=["wasm"])


def test_cli_compile_and_generate_native(tiny, tmp_path):
    onnx_path, _, _ = tiny
    run = lambda *a: subprocess.run([sys.executable, "-m", "nnjit.cli.main", *a], capture_output=True, text=True)
    c = run("compile", str(onnx_path), "-o", str(tmp_path / "b"), "--backend", "wasm", "--max-context", "48",
            "--prefill", "16", "--json")
    assert c.returncode == 0, c.stderr
    assert json.loads(c.stdout)["max_context"] == 48
    g = run("generate", str(tmp_path / "b"), "--prompt", "def forward(self, x):", "--max-new-tokens", "12",
            "--engine", "native", "--compare", str(onnx_path), "--json")
    assert g.returncode == 0, g.stderr
    out = json.loads(g.stdout)
    assert out["match"] is True and len(out["tokens"]) == 12 and out["max_logits_rel_err"] <= 1e-3
    assert out["decode_tokens_per_s"] > 0 and out["prefill_tokens_per_s"] > 0 and isinstance(out["text"], str)
    bad = run("generate", str(tmp_path / "b"), "--prompt", "x " * 60, "--max-new-tokens", "4", "--engine", "native")
    assert bad.returncode == 2 and "InputError" in bad.stderr and "max context of 48" in bad.stderr


def _cache_rows(out, n):
    s = NativeSession(out)
    r = Decoder(s).run(PROMPT, Sampling(max_new_tokens=8))
    layer = s.manifest["decoder"]["layers"][0]
    t = s.tensors[layer["key"]]
    k = s.mem.view(s.addr(layer["key"]), tuple(t["shape"]), np.float32)[:, :n].copy()
    return r, k


def test_kv_shield_same_outputs_permuted_cache(tiny, tmp_path):
    onnx_path, plain, _ = tiny
    s = compile_decoder(onnx_path, tmp_path / "s", max_context=64, prefill_len=8, backends=["wasm"], kv_shield_seed=99)
    assert s["kv_shield"] and read_manifest(tmp_path / "s")["decoder"]["kv_shield"] is True
    r_s, k_s = _cache_rows(tmp_path / "s", len(PROMPT))
    r_p, k_p = _cache_rows(plain, len(PROMPT))
    assert r_s["tokens"] == r_p["tokens"]
    assert np.abs(r_s["logits"] - r_p["logits"]).max() <= 1e-5 * np.abs(r_p["logits"]).max()
    # The stored keys differ from the plain model's, but each row holds the same values, reordered.
    assert np.abs(k_s - k_p).max() > 0.1
    np.testing.assert_array_equal(np.sort(k_s, axis=-1), np.sort(k_p, axis=-1))
    # Another secret gives another order.
    compile_decoder(onnx_path, tmp_path / "s2", max_context=64, prefill_len=8, backends=["wasm"], kv_shield_seed=100)
    assert np.abs(_cache_rows(tmp_path / "s2", len(PROMPT))[1] - k_s).max() > 0.1


@pytest.fixture(scope="module")
def p32(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("p32")
    compile_decoder(tiny[0], out, max_context=64, prefill_len=32, backends=["wasm"])
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 34])
def test_short_last_chunks_run_as_decode_steps(tiny, p32, n):
    """prefill_len 32: a last chunk of <= 2 tokens goes through the decode plan, with the same result."""
    onnx_path, out = tiny[0], p32
    prompt = [int(x) for x in np.random.default_rng(n).integers(100, 5000, n)]
    r = Decoder(NativeSession(out)).run(prompt, Sampling(max_new_tokens=4))
    ref = OrtDecoder(onnx_path).greedy(prompt, 4)
    assert r["tokens"] == ref["tokens"] and _rel_err(r["logits"], ref["logits"]) <= 1e-3
