"""Render WAT kernels from the Jinja2 templates in kernels_wasm/ and assemble them with wasmtime."""
from __future__ import annotations


import wasmtime

from ..errors import KernelBuildError
from .templates import REPO, environment

TEMPLATE_DIR = REPO / "kernels_wasm"


def _env():
    return environment("kernels_wasm")


def render(family: str, params: dict, relaxed: bool = False) -> str:
    """WAT text of one kernel. `relaxed` selects f32x4.relaxed_madd where the template fuses a multiply-add."""
    tpl = _env().get_template(f"{family}.wat.j2")
    return tpl.render(p=params, relaxed=relaxed)


def assemble(wat: str, what: str = "kernel") -> bytes:
    try:
        return wasmtime.wat2wasm(wat)
    except Exception as e:  # wasmtime raises its own WasmtimeError with the parser's position
        numbered = "\n".join(f"{i + 1:5d} {line}" for i, line in enumerate(wat.splitlines()))
        raise KernelBuildError(f"{what}: wat2wasm failed: {e}\n{numbered}") from e


def build(family: str, params: dict) -> tuple[bytes, bytes | None]:
    """(plain SIMD binary, relaxed-SIMD binary or None when the template has no multiply-add)."""
    plain_wat = render(family, params, relaxed=False)
    relaxed_wat = render(family, params, relaxed=True)
    plain = assemble(plain_wat, f"{family} {params}")
    if relaxed_wat == plain_wat:
        return plain, None
    return plain, assemble(relaxed_wat, f"{family} (relaxed) {params}")
