"""counters-switch (bench/zoo_switch_train.py): a LoRA-Switch decoder trained here. Its held-out accuracy is the
same under nnjit's switch plan, nnjit's unfused plan and onnxruntime on the unfused graph, token for token."""
from __future__ import annotations

import pytest
from nnjit.bench import zoo
from nnjit.bench import zoo_switch_train as counters
from nnjit.bench.decoder_ref import OrtDecoder
from nnjit.compiler.decoder import compile_decoder
from nnjit.compiler.generate import Decoder, Sampling
from nnjit.compiler.native_runtime import NativeSession

pytestmark = pytest.mark.slow


def test_trained_switch_accuracy_equals_unfused_and_onnxruntime(tmp_path):
    src = zoo.cached("counters-switch")
    s = compile_decoder(src, tmp_path / "b", max_context=counters.CONFIG["n_positions"], prefill_len=4, backends=["wasm"])
    assert s["lora_switched"] == 8
    sess = NativeSession(tmp_path / "b")
    d = Decoder(sess)
    ref = OrtDecoder(src)
    outs = {"switch": [], "unfused": [], "onnxruntime": []}

    def nnjit(key, plan):
        def gen(prompt, n):
            d.decode_plan = plan
            toks = d.run(prompt, Sampling(max_new_tokens=n))["tokens"]
            outs[key].append(toks)
            return toks
        return gen

    def ort(prompt, n):
        toks = ref.greedy(prompt, n)["tokens"]
        outs["onnxruntime"].append(toks)
        return toks

    acc = {"switch": counters.accuracy(nnjit("switch", "decode")), "unfused": counters.accuracy(nnjit("unfused", "decode_unfused")),
           "onnxruntime": counters.accuracy(ort)}
    assert acc["switch"] == acc["unfused"] == acc["onnxruntime"] >= 0.9, acc
    assert outs["switch"] == outs["unfused"] == outs["onnxruntime"]
    # The merges were skipped for some tokens and run for others.
    assert 0 < sess.stats["merge_dispatches"] and 0 < sess.stats["merge_skipped"]
    print(acc, sess.stats)
