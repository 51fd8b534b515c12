"""String tensors and sequence/optional passthrough values in the page (web_runtime/values.js), on wasm
in a Worker and on WebGPU: the same outputs as the native runners, and bad feeds as InputErrors."""
from __future__ import annotations

import numpy as np
import pytest

from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model
from tests import test_passthrough as pt
from tests import test_strings as st

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("values-web")
    st.model(d / "s.onnx")
    pt.model(d / "p.onnx")
    for name in ("s", "p"):
        compile_model(d / f"{name}.onnx", d / name, backends=("wasm", "webgpu"))
    return d


A, B = st.words(st.N, 5), np.array(["cat"], dtype=object)


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_strings_and_passthrough_in_the_page(harness, chromium_gpu, bundles, backend):
    h = harness if backend == "wasm" else chromium_gpu
    res = h.run_bundles({"s": (bundles / "s", {"a": A, "b": B}),
                         "p": (bundles / "p", {"a": pt.A, "s": pt.S, "o": pt.O}),
                         "p-none": (bundles / "p", {"a": pt.A, "s": pt.S, "o": None}),
                         "bad": (bundles / "s", {"a": np.arange(st.N), "b": B})}, backend=backend)
    assert res["s"]["ok"] and res["s"]["backend"] == backend, res["s"]
    st.check(res["s"]["outputs"], A, B)
    assert [x.tolist() for x in res["s"]["outputs"].values()] == [x.tolist() for x in NativeSession(bundles / "s").run({"a": A, "b": B}).values()]
    pt.check(res["p"]["outputs"], pt.O)
    pt.check(res["p-none"]["outputs"], None)
    bad = res["bad"]
    assert not bad["ok"] and bad["error"]["name"] == "InputError"
    assert bad["error"]["message"] == 'input "a": expected string data (string[]), got BigInt64Array'
