"""Graph → kernel steps: checks every op is lowerable and every value has a static shape first."""
from __future__ import annotations

from .errors import ShapeError, UnsupportedOpError
from .ir import CAST_ONLY_BITS, DTYPE_SIZES, Graph, tensor_bytes
from .ops import LOWERINGS, Lowering
from .ops.half import HALF, native


# Ops only compiler passes create (domain "nnjit"): not ONNX ops a model may contain.
INTERNAL_OPS = ("KvWrite", "CausalAttention", "MoeExperts", "LoraSwitch")


def supported_ops() -> list[str]:
    return sorted(op for op in LOWERINGS if op not in INTERNAL_OPS)


def check(g: Graph, source: str = "model") -> None:
    bad = [n for n in g.nodes if n.op not in LOWERINGS or (n.op in INTERNAL_OPS and n.domain != "nnjit")]
    if bad:
        n = bad[0]
        more = f" (and {len(bad) - 1} more unsupported nodes)" if len(bad) > 1 else ""
        raise UnsupportedOpError(f"{source}: unsupported op {n.op!r} at node {n.name!r}{more}; "
                                 f"supported ops: {', '.join(supported_ops())}")
    for n in g.nodes:
        for name in [i for i in n.inputs if i] + [o for o in n.outputs if o]:
            v = g.values[name]
            if v.shape is None:
                from .bind import shape_hint
                hint, need = shape_hint(g, name)
                raise ShapeError(f"{source}: value {name!r} (at node {n.name!r}, {n.op}) has no static shape "
                                 f"after binding inputs; bind every dynamic input dim with --shape{hint}",
                                 needs_constant=need)
            if v.dtype not in DTYPE_SIZES and not (v.dtype in CAST_ONLY_BITS and n.op in ("Cast", "CastLike")) \
                    and not (v.dtype in HALF and native(g, n, v.dtype)):  # bfloat16 moved as 2-byte images
                raise UnsupportedOpError(f"{source}: value {name!r} at node {n.name!r} ({n.op}) has dtype "
                                         f"{v.dtype}; supported dtypes: {', '.join(DTYPE_SIZES)}")


def lower(g: Graph, source: str = "model", pack_widths: dict[str, int] | None = None) -> Lowering:
    """`pack_widths`: panel widths constant gemm operands were packed with in another plan of the same
    bundle (they are packed the same way here, so the bundle stores them once)."""
    check(g, source)
    L = Lowering(g)
    L.pack_widths.update(pack_widths or {})
    for node in g.nodes:
        first_step = len(L.steps)
        try:
            LOWERINGS[node.op](L, node)
            for s in L.steps[first_step:]:
                _check_params(s.params, node, source)
        except (ShapeError, UnsupportedOpError):
            raise
        except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError) as e:
            # Shapes/attributes that onnx shape inference let through but the lowering cannot honour.
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise UnsupportedOpError(f"{source}: node {node.name!r} ({node.op}) cannot be lowered with these "
                                     f"inputs/attributes ({type(e).__name__}: {first})") from None
    # An output that is only a view of an input (or of another output) gets its own buffer.
    seen = set()
    for out in g.outputs:
        root = resolve(L.aliases, out)
        if out in L.aliases and (root in g.inputs or root in seen):
            del L.aliases[out]
            s = g.values[out].shape
            L.steps.append(_copy_step(g, root, out, s))
        seen.add(resolve(L.aliases, out))
    return L


_I32 = (-(2 ** 31), 2 ** 32 - 1)


def _check_params(params, node, source: str, key: str = "") -> None:
    """Kernels bake parameters into 32-bit wasm/WGSL constants: an attribute past that range (a fuzzed
    stride of 2^40) is the model's problem, named here, not an assembler failure later."""
    if isinstance(params, dict):
        for k, v in params.items():
            _check_params(v, node, source, k)
    elif isinstance(params, (list, tuple)):
        for v in params:
            _check_params(v, node, source, key)
    elif isinstance(params, int) and not isinstance(params, bool) and not _I32[0] <= params <= _I32[1]:
        raise UnsupportedOpError(f"{source}: node {node.name!r} ({node.op}): {key} = {params} is outside the 32-bit "
                                 "range kernels address")


def _copy_step(g: Graph, src: str, dst: str, shape):
    from .ops.common import Step
    n = 1
    for d in shape:
        n *= d
    dt = g.values[dst].dtype
    if dt not in DTYPE_SIZES:  # a Cast-only dtype (maybe packed): its bytes
        n, eb = tensor_bytes(dt, n), 1
    else:
        eb = DTYPE_SIZES[dt]
    return Step("Identity", dst, "copy", {"shape": [max(n, 1)], "src_strides": [1], "dst_strides": [1],
                                         "src_offset": 0, "dst_offset": 0, "elem_bytes": eb}, [src, dst], [dst])


def resolve(aliases: dict[str, str], name: str) -> str:
    while name in aliases:
        name = aliases[name]
    return name


