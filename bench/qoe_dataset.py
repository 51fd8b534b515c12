"""Real data for the QoE accuracy metrics (docs/metrics.md §5): for each zoo model that has some, the
samples its bundle takes one at a time, onnxruntime's output on each, and labels where the dataset
has them. Models without real data (the synthetic microbenchmarks) get none, and their cells say n/a.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import datasets

# What the first output is: classifiers are scored by top-1, embedding models by cosine similarity.
KINDS = {"digits-cnn": "classifier", "moe-digits": "classifier", "mobilenetv2": "classifier", "minilm-l6": "embedding"}


def _stack(per_sample: dict[str, np.ndarray], shapes: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """[n, ...] rows → [n, *bound shape]: each sample shaped as the bundle's (batch-1) input."""
    return {k: np.ascontiguousarray(v.reshape(len(v), *shapes[k])) for k, v in per_sample.items()}


def samples(name: str, shapes: dict[str, list[int]]):
    """(inputs stacked [n, *bound input shape], labels int64 [n] or None), or None without real data."""
    if name in ("digits-cnn", "moe-digits"):
        x, y = datasets.digits_test()
        (inp,) = shapes
        return _stack({inp: x}, shapes), y
    if name == "mobilenetv2":
        photos = datasets.imagenet_photos()
        (inp,) = shapes
        return _stack({inp: np.concatenate(list(photos.values()))}, shapes), None
    if name == "minilm-l6":
        seq = shapes["input_ids"][1]
        feeds = datasets.minilm_tokenize(datasets.MINILM_SENTENCES, seq)
        return _stack(feeds, shapes), None
    return None


def prepare(name: str, root: Path, manifest: dict, onnx_path) -> dict:
    """Write root/dataset.npz (inputs stacked per sample) and root/dataset_refs.npz (onnxruntime's
    first output per sample, `labels` where known); returns what the prepared model info carries."""
    shapes = {i["name"]: list(i["shape"]) for i in manifest["inputs"]}
    got = samples(name, shapes)
    if got is None:
        return {}
    inputs, labels = got
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    output = manifest["outputs"][0]["name"]
    n = len(next(iter(inputs.values())))
    refs = np.stack([sess.run([output], {k: v[i] for k, v in inputs.items()})[0] for i in range(n)])
    np.savez(root / "dataset.npz", **inputs)
    np.savez(root / "dataset_refs.npz", out=refs, **({"labels": labels} if labels is not None else {}))
    return {"dataset": str(root / "dataset.npz"), "dataset_refs": str(root / "dataset_refs.npz"),
            "dataset_kind": KINDS[name], "dataset_output": output, "dataset_n": int(n)}
