"""Every op through the whole compiler path (import → passes → lowering → plan → wasm kernels →
bundle) executed natively by wasmtime, against onnxruntime."""
import numpy as np
import pytest

from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

from .op_cases import CASES, feeds_for, reference, rel_err, save


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("relaxed", [False, True], ids=["simd", "relaxed"])
def test_op(name, relaxed, tmp_path):
    save(name, tmp_path / "m.onnx")
    compile_model(tmp_path / "m.onnx", tmp_path / "b")
    feeds = feeds_for(name)
    out = NativeSession(tmp_path / "b", relaxed=relaxed).run(feeds)
    ref = reference(name, feeds)
    tol = CASES[name][2]
    for k, r in ref.items():
        assert out[k].shape == r.shape, (k, out[k].shape, r.shape)
        assert out[k].dtype == r.dtype
        assert rel_err(out[k], r) <= tol, (k, rel_err(out[k], r))
        assert np.isfinite(out[k]).all() == np.isfinite(r).all()
