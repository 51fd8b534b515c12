"""Render WGSL kernels from the Jinja2 templates in kernels_wgsl/.

A template sees `p` (the step's params, the same dict the WAT template gets) and `s` (the WebGPU
schedule: workgroup size, tiles — empty for the default) and exports, as top-level `{% set %}`
variables, `dispatch` (workgroup counts [x, y, z]) and optionally `workgroup` (its size, for the
manifest). Keeping the dispatch rule in the template keeps one file per op family."""
from __future__ import annotations


import jinja2

from ..errors import KernelBuildError
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
