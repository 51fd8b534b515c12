"""The Jinja2 environment both backends render kernels with: strict about missing parameters,
whitespace-tidy, with `{% do %}` for templates that build lists."""
from __future__ import annotations

import functools
from pathlib import Path

import jinja2

REPO = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=None)
def environment(folder: str) -> jinja2.Environment:
    """`folder`: the template directory under the repository root (kernels_wasm, kernels_wgsl)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(REPO / folder)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.do"],
    )
