"""_act.wgsl.j2: accuracy of the shared WGSL activation functions over dense grids (float64 references),
special values, and the apply() macro (scalar and vec4 forms, clip bounds)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nnjit.compiler.codegen import wgsl
from nnjit.compiler.wgpu_native import run_kernel

HARNESS = """{% import "_act.wgsl.j2" as act with context %}
{{ act.functions(vec4=True) }}
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x + gid.y * 65535u * 64u;
  if (i >= {{ n4 }}u) { return; }
  let v = x[i];
{% if vec4 %}
  y[i] = {{ act.apply(name, 'v', vec=4) }};
{% else %}
  y[i] = vec4<f32>({{ act.apply(name, 'v.x') }}, {{ act.apply(name, 'v.y') }},
                   {{ act.apply(name, 'v.z') }}, {{ act.apply(name, 'v.w') }});
{% endif %}
}
"""


def apply(name, x, vec4=False, params=None):
    x = np.asarray(x, np.float32).ravel()
    pad = (-x.size) % 4
    xp = np.concatenate([x, np.zeros(pad, np.float32)])
    n4 = xp.size // 4
    text = wgsl._env().from_string(HARNESS).render(n4=n4, name=name, vec4=vec4, p=params or {})
    groups = -(-n4 // 64)
    dispatch = [min(groups, 65535), -(-groups // 65535), 1]
    y, = run_kernel(text, dispatch, [xp], [((xp.size,), "float32")])
    return y[:x.size]


_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


REF = {
    "exp": np.exp,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "erf": _erf,
    "gelu": lambda x: 0.5 * x * _erfc(-x / math.sqrt(2)),
}


def grid():
    # Dense near 0 where the polynomial / big-argument switches are, sparse out to the saturation ranges.
    return np.concatenate([np.linspace(-12, 12, 48001), np.geomspace(1e-30, 90, 2000),
                           -np.geomspace(1e-30, 90, 2000)]).astype(np.float32)


@pytest.mark.parametrize("name", ["exp", "sigmoid", "tanh", "erf", "gelu"])
def test_accuracy(name):
    x = grid()
    if name == "exp":
        x = x[np.abs(x) < 87]
    ref = REF[name](x.astype(np.float64))
    for vec4 in (False, True):
        y = apply(name, x, vec4).astype(np.float64)
        if name in ("exp", "sigmoid"):
            err = np.abs(y - ref) / np.maximum(np.abs(ref), 1e-30)
            bound = 2e-6 if name == "exp" else 1e-6
            mask = ref > 1e-30  # gradual underflow may flush to 0 on a GPU
        else:
            err = np.abs(y - ref) / np.maximum(1.0, np.abs(ref))
            bound = 1e-6
            mask = np.ones_like(err, bool)
        worst = np.argmax(np.where(mask, err, 0))
        assert err[mask].max() <= bound, f"{name} vec4={vec4}: err {err[worst]:.3g} at x={x[worst]!r}"


def test_special_values():
    x = np.array([np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0], np.float32)
    for vec4 in (False, True):
        np.testing.assert_array_equal(apply("sigmoid", x, vec4), [1, 0, 1, 0, 0.5, 0.5])
        np.testing.assert_array_equal(apply("tanh", x, vec4), [1, -1, 1, -1, 0, 0])
        np.testing.assert_array_equal(apply("erf", x, vec4), [1, -1, 1, -1, 0, 0])
        g = apply("gelu", x, vec4)
        assert g[0] == np.inf and g[1] == 0 and g[2] == np.float32(1e30) and g[3] == 0 and g[4] == 0


@pytest.mark.parametrize("vec4", [False, True])
def test_relu_clip_apply(vec4):
    x = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, 7.0, 1e38, -1e38], np.float32)
    np.testing.assert_array_equal(apply("relu", x, vec4), np.maximum(x, 0))
    np.testing.assert_array_equal(apply("none", x, vec4), x)
    np.testing.assert_array_equal(apply("clip", x, vec4, dict(act_min=0.0, act_max=6.0)), np.clip(x, 0, 6))
    # Open or out-of-f32-range sides clamp nothing.
    np.testing.assert_array_equal(apply("clip", x, vec4, dict(act_min=-0.5, act_max=None)), np.maximum(x, -0.5))
    np.testing.assert_array_equal(apply("clip", x, vec4, dict(act_min=-math.inf, act_max=1e40)), x)
    np.testing.assert_array_equal(apply("clip", x, vec4, dict(act_min=None, act_max=0.25)), np.minimum(x, 0.25))


def test_literals():
    env = wgsl._env()
    lit = env.from_string('{% import "_act.wgsl.j2" as act %}{{ act.f32(v) }}')
    for v in [2.0, -0.5, 1e30, 3.4028234663852886e38, 1.17549435e-38, 0.1]:
        t = lit.render(v=v)
        assert ("." in t or "e" in t) and np.float32(float(t)) == np.float32(v)


@pytest.mark.parametrize("vec4", [False, True])
def test_nan_passes_relu_and_clip(vec4):
    x = np.array([np.nan, -np.nan, -2.0, 9.0], np.float32)
    np.testing.assert_array_equal(apply("relu", x, vec4), [np.nan, np.nan, 0, 9])
    np.testing.assert_array_equal(apply("clip", x, vec4, dict(act_min=-1.0, act_max=6.0)), [np.nan, np.nan, -1, 6])
