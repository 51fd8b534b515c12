"""Training-mode Dropout: the mask is drawn at compile time exactly as onnx's reference draws it
(RandomState(seed).uniform >= ratio), so outputs equal onnx.reference.ReferenceEvaluator's bit for bit, on
wasm and WebGPU; without a seed the mask is fixed per bundle; a run-time training_mode or ratio is a named
UnsupportedOpError."""
import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from nnjit.compiler.errors import UnsupportedOpError
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model


def _model(shape, ratio=0.5, training=True, seed=0, dtype=T.FLOAT, mask=True, ratio_input=False,
           training_input=False):
    inputs = [helper.make_tensor_value_info("x", dtype, shape)]
    inits = []
    for name, value, as_input, t in (("r", np.float32(ratio), ratio_input, T.FLOAT),
                                     ("t", np.bool_(training), training_input, T.BOOL)):
        if as_input:
            inputs.append(helper.make_tensor_value_info(name, t, []))
        else:
            inits.append(numpy_helper.from_array(np.array(value), name))
    attrs = {} if seed is None else {"seed": seed}
    outs = ["y", "z"] if mask else ["y"]
    node = helper.make_node("Dropout", ["x", "r", "t"], outs, name="drop", **attrs)
    g = helper.make_graph([node], "dropout", inputs,
                          [helper.make_tensor_value_info("y", dtype, shape)]
                          + ([helper.make_tensor_value_info("z", T.BOOL, shape)] if mask else []), inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 22)])
    m.ir_version = 10
    return m


def _compile(m, tmp_path, name="b"):
    onnx.save(m, tmp_path / f"{name}.onnx")
    compile_model(tmp_path / f"{name}.onnx", tmp_path / name, backends=("wasm", "webgpu"))
    return tmp_path / name


def _x(shape, dtype=np.float32):
    x = np.random.default_rng(int(np.prod(shape))).standard_normal(shape).astype(dtype)
    x.reshape(-1)[:3] = [-0.0, np.inf, np.nan][:x.size]  # -0 and non-finite values dropped as the reference drops them
    return x


def _sessions():
    out = [NativeSession]
    try:
        from nnjit.compiler.gpu_runtime import GPUSession
        from nnjit.compiler.wgpu_native import device
        device()
        out.append(GPUSession)
    except (ImportError, RuntimeError):
        pass
    return out


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")  # the reference's inf · 0
@pytest.mark.parametrize("shape,ratio,seed", [((1,), 0.5, 0), ((7,), 0.75, 3), ((37,), 0.1, 12345),
                                              ((3, 130), 0.5, 2 ** 32 - 1)])
def test_training_matches_reference(shape, ratio, seed, tmp_path):
    m = _model(list(shape), ratio, seed=seed)
    b = _compile(m, tmp_path)
    x = _x(shape)
    want_y, want_z = ReferenceEvaluator(m).run(None, {"x": x})
    for session in _sessions():
        out = session(b).run({"x": x})
        assert out["z"].dtype == np.bool_
        np.testing.assert_array_equal(out["z"], want_z)
        # bit for bit, signed zeros and NaN included
        np.testing.assert_array_equal(out["y"].view(np.uint32), want_y.astype(np.float32).view(np.uint32))


def test_float16_training_is_widened_and_rounded_once(tmp_path):
    """float16 x: computed in float32 (x·scale) and rounded to float16 once; the reference computes
    mask·x·scale with a float32 scale, i.e. in float32 too."""
    m = _model([130], 0.75, seed=7, dtype=T.FLOAT16)
    b = _compile(m, tmp_path)
    x = _x((130,), np.float16)
    want_y, want_z = ReferenceEvaluator(m).run(None, {"x": x})
    for session in _sessions():
        out = session(b).run({"x": x})
        assert out["y"].dtype == np.float16
        np.testing.assert_array_equal(out["z"], want_z)
        np.testing.assert_array_equal(out["y"].view(np.uint16), want_y.astype(np.float16).view(np.uint16))


def test_without_seed_the_mask_is_fixed_per_bundle(tmp_path):
    m = _model([130], 0.5, seed=None)
    x = np.ones(130, np.float32)
    masks = []
    for name in ("a", "b"):
        s = NativeSession(_compile(m, tmp_path, name))
        first, again = s.run({"x": x}), s.run({"x": x})
        np.testing.assert_array_equal(first["z"], again["z"])  # the same mask on every run of a bundle
        np.testing.assert_array_equal(first["y"], np.where(first["z"], np.float32(2.0), np.float32(0.0)))
        assert 20 < first["z"].sum() < 110  # ratio 0.5 of 130: a draw, not a constant
        masks.append(first["z"])
    assert not np.array_equal(*masks)  # a fresh seed per compile (equal with probability 2^-130)


@pytest.mark.parametrize("training,ratio", [(False, 0.5), (True, 0.0)])
def test_identity_cases(training, ratio, tmp_path):
    b = _compile(_model([37], ratio, training=training), tmp_path)
    x = _x((37,))
    out = NativeSession(b).run({"x": x})
    np.testing.assert_array_equal(out["y"].view(np.uint32), x.view(np.uint32))
    assert out["z"].dtype == np.bool_ and out["z"].all()


@pytest.mark.parametrize("which,index,what", [("training_input", 2, "training_mode"), ("ratio_input", 1, "ratio")])
def test_run_time_training_or_ratio_is_named(which, index, what, tmp_path):
    m = _model([7], **{which: True})
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError) as e:
        compile_model(tmp_path / "m.onnx", tmp_path / "b")
    msg = str(e.value)
    assert f"node drop (Dropout): input {index} ({what}) must be a constant" in msg, msg
    assert e.value.needs_constant == ("t" if what == "training_mode" else "r")


def test_bad_seed_is_named(tmp_path):
    onnx.save(_model([7], seed=-1), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError, match=r"node drop \(Dropout\): seed -1 is outside"):
        compile_model(tmp_path / "m.onnx", tmp_path / "b")
