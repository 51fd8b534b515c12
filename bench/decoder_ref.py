"""onnxruntime on a zoo decoder's exported graph (past keys/values fed back each step): the native
reference that `nnjit generate --compare` and the decoder tests hold nnjit's tokens and logits to."""
from __future__ import annotations

import time

import numpy as np


class OrtDecoder:
    def __init__(self, model_path, threads: int = 1):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
        self.past = [i for i in self.sess.get_inputs() if i.name.startswith("past.")]
        self.present = [o.name for o in self.sess.get_outputs() if o.name.startswith("present.")]

    def empty_past(self) -> dict[str, np.ndarray]:
        return {i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32) for i in self.past}

    def step(self, ids: list[int], start: int, past: dict) -> tuple[np.ndarray, dict]:
        """Logits [len(ids), vocab] of the tokens at positions start.. and the grown past."""
        feeds = {"input_ids": np.array([ids], np.int64),
                 "position_ids": np.arange(start, start + len(ids), dtype=np.int64)[None], **past}
        out = self.sess.run(["logits", *self.present], feeds)
        grown = {p.name: o for p, o in zip(self.past, out[1:])}
        return out[0][0], grown

    def greedy(self, prompt: list[int], n: int, eos: int | None = None) -> dict:
        """Greedy tokens plus per-step logits and prefill/decode rates."""
        t0 = time.perf_counter()
        logits, past = self.step(list(prompt), 0, self.empty_past())
        t1 = time.perf_counter()
        steps = [logits[-1]]
        tokens = []
        for _ in range(n):
            tok = int(np.argmax(steps[-1]))
            tokens.append(tok)
            if (eos is not None and tok == eos) or len(tokens) == n:
                break
            logits, past = self.step([tok], len(prompt) + len(tokens) - 1, past)
            steps.append(logits[-1])
        t2 = time.perf_counter()
        decoded = max(len(steps) - 1, 1)
        return {"tokens": tokens, "logits": np.stack(steps),
                "prefill_tokens_per_s": len(prompt) / (t1 - t0),
                "decode_tokens_per_s": decoded / max(t2 - t1, 1e-9)}


def round_weights_f16(src, dst):
    """A copy of the model whose float32 initializers that a --weights f16 bundle halves are rounded
    to half and back: the exact reference for such a bundle."""
    import onnx
    from onnx import numpy_helper

    from nnjit.compiler.weights_codec import MIN_F16_BYTES

    m = onnx.load(str(src))
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32 and a.size * 4 >= MIN_F16_BYTES:
            t.CopyFrom(numpy_helper.from_array(a.astype(np.float16).astype(np.float32), t.name))
    onnx.save(m, str(dst))
    return dst
