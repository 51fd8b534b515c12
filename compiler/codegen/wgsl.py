"""Render WGSL kernels from the Jinja2 templates in kernels_wgsl/.

A template sees `p` (the step's params, the same dict the WAT template gets) and `s` (the WebGPU
schedule: workgroup size, tiles — empty for the default) and exports, as top-level `{% set %}`
variables, `dispatch` (workgroup counts [x, y, z]) and optionally `workgroup` (its size, for the
manifest). Keeping the dispatch rule in the template keeps one file per op family."""
from __future__ import annotations


import jinja2

from ..errors import KernelBuildError
from ..ir import CAST_ONLY_BITS
from .templates import REPO, environment

TEMPLATE_DIR = REPO / "kernels_wgsl"
MAX_WORKGROUPS_PER_DIM = 65535


def _env():
    return environment("kernels_wgsl")


# WGSL const-expressions may not evaluate to inf or NaN: Chromium's Tint rejects `bitcast<f32>(0x7f800000u)`
# ("value inf cannot be represented as 'f32'") where naga accepts it. Reading the bit pattern from a
# module-scope private variable makes the bitcast a run-time expression with the same value.
_SPECIAL_BITS = {"0x7f800000u": "_nnjit_pos_inf", "0xff800000u": "_nnjit_neg_inf", "0x7fc00000u": "_nnjit_nan"}


def _runtime_specials(text: str) -> str:
    used = [(bits, name) for bits, name in _SPECIAL_BITS.items() if f"bitcast<f32>({bits})" in text]
    for bits, name in used:
        text = text.replace(f"bitcast<f32>({bits})", f"bitcast<f32>({name})")
    decls = "".join(f"var<private> {name}: u32 = {bits};\n" for bits, name in used)
    return decls + text


def has_template(family: str) -> bool:
    return (TEMPLATE_DIR / f"{family}.wgsl.j2").is_file()


def build(family: str, params: dict, schedule: dict | None = None) -> tuple[str, list[int], dict]:
    """(WGSL source, dispatch [x, y, z], info {workgroup: [...]})."""
    tpl = _env().get_template(f"{family}.wgsl.j2")
    ctx = {"p": params, "s": schedule or {}}
    try:
        text = tpl.render(**ctx)
        module = tpl.make_module(ctx)
    except jinja2.TemplateError as e:
        raise KernelBuildError(f"{family}.wgsl.j2 {params}: {e}") from e
    text = _runtime_specials(text)
    dispatch = [int(d) for d in (list(getattr(module, "dispatch")) + [1, 1])[:3]]
    if any(d < 1 or d > MAX_WORKGROUPS_PER_DIM for d in dispatch):
        raise KernelBuildError(f"{family}.wgsl.j2 {params}: dispatch {dispatch} outside 1..{MAX_WORKGROUPS_PER_DIM}")
    info = {"workgroup": list(getattr(module, "workgroup", [])) or None}
    return text, dispatch, info


def validate(text: str, what: str = "kernel") -> None:
    """Compile the WGSL with wgpu (naga) so a template bug fails at compile time, not in a browser."""
    from ..wgpu_native import device
    try:
        device().create_shader_module(code=text)
    except Exception as e:
        numbered = "\n".join(f"{i + 1:5d} {line}" for i, line in enumerate(text.splitlines()))
        raise KernelBuildError(f"{what}: invalid WGSL: {e}\n{numbered}") from e


# WGSL storage has no 8/16-bit integers, no 64-bit types and (core) no f16: the templates carry those as
# u32 words (kernels_wgsl/_ints.wgsl.j2, _wide.wgsl.j2), 64-bit integers in full, float16 converted by
# hand, float64 only where the bits suffice (ordering, conversions). A step outside these gets no WebGPU
# kernel: the bundle still runs it on wasm (the web runtime's webgpuGap names the step), and `gap` says why.
_SMALL_INTS = ("int8", "uint8", "int16", "uint16", "int32", "uint32")
_GPU_DTYPES = {"binary": ("float32", "int64", "uint64", "float16", "float64") + _SMALL_INTS,
               "compare": ("float32", "int64", "uint64", "bool") + _SMALL_INTS,
               "cast": ("float32", "int32", "int64", "bool", "float16", "float64", "uint64") + _SMALL_INTS
               + tuple(CAST_ONLY_BITS),
               "cumsum": ("float32", "int32", "int64", "float64"), "topk": ("float32", "int32", "int64", "uint64")}
_GPU_ELEM_BYTES = {"copy": (1, 2, 4, 8), "where": (1, 2, 4, 8), "gather": (4, 8), "scatternd": (4, 8)}
_F64_BINARY = ("max", "min", "mod", "fmod")  # other float64 arithmetic would need a software f64


def gap(family: str, params: dict) -> str | None:
    """None when the WGSL template handles this step; else why it has no WebGPU kernel."""
    if not has_template(family):
        return f"{family}: no WGSL kernel yet"
    if family == "moe" and 4 * (3 if params.get("gated") else 1) * params["F"] > 16384:
        return "moe: the expert's hidden vector does not fit the 16 KiB of workgroup memory WebGPU guarantees"
    ok = _GPU_DTYPES.get(family)
    for key in ("dtype", "src", "dst"):
        d = params.get(key)
        if d is not None and ok is not None and d not in ok:
            return f"{family} on {d}: WGSL has no {d} kernels"
    if family == "binary" and params.get("dtype") == "float64" and params.get("op") not in _F64_BINARY:
        return f"binary {params.get('op')} on float64: WGSL has no float64 arithmetic (only {', '.join(_F64_BINARY)})"
    eb = params.get("elem_bytes")
    if family in _GPU_ELEM_BYTES and eb not in _GPU_ELEM_BYTES[family]:
        return f"{family} of {eb}-byte elements: WGSL storage has no {8 * eb}-bit type"
    return None
