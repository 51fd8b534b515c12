"""Structure and layout checks of a bundle's manifest.json (docs/bundle.md): a malformed manifest fails
here, as a BundleError naming the field, before any file is read into wasm memory (and never as a
KeyError/TypeError/IndexError later)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from . import weights_codec
from .errors import BundleError
from .ir import NP_DTYPES as DTYPE_BYTES  # the dtypes a bundle may hold (membership only)
from .ir import tensor_bytes

MAX_MEMORY_BYTES = 65536 * 65536  # wasm32: 65536 pages of 64 KiB
# Bytes [0, RESERVED_BYTES) of the memory are the runtime's (web_runtime/backends/wasm.js).
RESERVED_BYTES = 64


def _fail(field: str, expected: str, got) -> BundleError:
    g = json.dumps(got) if isinstance(got, (dict, list, str, int, float, bool, type(None))) else repr(got)
    if len(g) > 80:
        g = g[:77] + "..."
    return BundleError(f"manifest.json: {field}: expected {expected}, got {g}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int(obj: dict, key: str, field: str, lo: int = 0, hi: int | None = None) -> int:
    if key not in obj:
        raise BundleError(f"manifest.json: {field}.{key}: missing (expected an integer)")
    v = obj[key]
    if not _is_int(v) or v < lo or (hi is not None and v > hi):
        rng = f"an integer >= {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise _fail(f"{field}.{key}", rng, v)
    return v


def _get(obj: dict, key: str, field: str, types, what: str):
    if key not in obj:
        raise BundleError(f"manifest.json: {field}.{key}: missing (expected {what})")
    v = obj[key]
    if not isinstance(v, types):
        raise _fail(f"{field}.{key}", what, v)
    return v


def _rel_file(obj: dict, field: str) -> str:
    f = _get(obj, "file", field, str, "a relative file path")
    p = Path(f)
    # Control characters too: a name with a newline would break the one-line error messages that quote it.
    if not f or p.is_absolute() or ".." in p.parts or "\\" in f or any(ord(c) < 32 for c in f):
        raise _fail(f"{field}.file", "a relative path inside the bundle", f)
    digest = _get(obj, "sha256", field, str, "a sha256 hex digest")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise _fail(f"{field}.sha256", "64 hex digits", digest)
    return f


def _shape(v, field: str) -> list[int]:
    if not isinstance(v, list) or not all(_is_int(d) and 0 <= d < 2**32 for d in v) or len(v) > 16:
        raise _fail(field, "a list of at most 16 integer dims >= 0", v)
    return v


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def check_manifest(m: dict) -> dict[int, dict]:
    """Validate the manifest's structure and every tensor range (docs/bundle.md). Returns tensors by id."""
    for key in ("inputs", "outputs", "tensors", "steps", "kernels"):
        _get(m, key, "manifest", list, "a list")
    mem = _get(m, "memory", "manifest", dict, "an object")
    w = _get(m, "weights", "manifest", dict, "an object")
    _rel_file(w, "weights")
    wbytes = _int(w, "bytes", "weights")
    weights_codec.check(w)
    total = _int(mem, "total_bytes", "memory", 1, MAX_MEMORY_BYTES)
    wbase = _int(mem, "weights_base", "memory")
    abase = _int(mem, "arena_base", "memory")
    abytes = _int(mem, "arena_bytes", "memory")
    for key, base in (("weights_base", wbase), ("arena_base", abase)):
        if base < RESERVED_BYTES:  # the runtime's: threads count split work at byte 0 (docs/space.md)
            raise _fail(f"memory.{key}", f">= {RESERVED_BYTES}", base)
    if wbase + wbytes > total:
        raise _fail("memory.weights_base + weights.bytes", f"<= memory.total_bytes ({total})", wbase + wbytes)
    if abase + abytes > total:
        raise _fail("memory.arena_base + memory.arena_bytes", f"<= memory.total_bytes ({total})", abase + abytes)

    tensors: dict[int, dict] = {}
    for k, t in enumerate(m["tensors"]):
        f = f"tensors[{k}]"
        if not isinstance(t, dict):
            raise _fail(f, "an object", t)
        tid = _int(t, "id", f)
        if tid != k:
            raise _fail(f"{f}.id", f"{k} (a tensor's id is its index in the list)", tid)
        dtype = _get(t, "dtype", f, str, f"one of {', '.join(DTYPE_BYTES)}")
        if dtype not in DTYPE_BYTES:
            raise _fail(f"{f}.dtype", f"one of {', '.join(DTYPE_BYTES)}", dtype)
        shape = _shape(t.get("shape"), f"{f}.shape")
        nbytes = _int(t, "bytes", f)
        if nbytes != tensor_bytes(dtype, _numel(shape)):
            raise _fail(f"{f}.bytes", f"{tensor_bytes(dtype, _numel(shape))} (shape {shape} of {dtype})", nbytes)
        storage = t.get("storage")
        if not isinstance(storage, str) or storage not in ("weight", "arena"):
            raise _fail(f"{f}.storage", "'weight' or 'arena'", storage)
        off = _int(t, "offset", f)
        limit, what = (wbytes, "weights.bytes") if storage == "weight" else (abytes, "memory.arena_bytes")
        if off + nbytes > limit:
            raise _fail(f"{f}.offset + bytes", f"<= {what} ({limit}) for a {storage} tensor", off + nbytes)
        tensors[tid] = t

    kernels: dict[str, dict] = {}
    for k, kern in enumerate(m["kernels"]):
        f = f"kernels[{k}]"
        if not isinstance(kern, dict):
            raise _fail(f, "an object", kern)
        kid = _get(kern, "id", f, str, "a kernel id string")
        if kid in kernels:
            raise _fail(f"{f}.id", "a unique kernel id", kid)
        backend = kern.get("backend", "wasm")
        if not isinstance(backend, str) or backend not in ("wasm", "webgpu"):
            raise _fail(f"{f}.backend", "'wasm' or 'webgpu'", backend)
        _rel_file(kern, f)
        rel = kern.get("relaxed")
        if rel is not None:
            if not isinstance(rel, dict):
                raise _fail(f"{f}.relaxed", "null or an object with file and sha256", rel)
            _rel_file(rel, f"{f}.relaxed")
        kernels[kid] = kern

    strings = m.get("strings", [])
    if not isinstance(strings, list) or not all(isinstance(x, str) for x in strings):
        raise _fail("strings", "a list of strings (the model's string constants)", strings)
    passthrough = m.get("passthrough", [])
    if not isinstance(passthrough, list):
        raise _fail("passthrough", "a list", passthrough)
    for k, e in enumerate(passthrough):
        f = f"passthrough[{k}]"
        if not isinstance(e, dict):
            raise _fail(f, "an object", e)
        _get(e, "input", f, str, "a name string")
        _get(e, "output", f, str, "a name string")
        _check_type(e.get("type"), f"{f}.type")
    for section in ("inputs", "outputs"):
        _check_io(m[section], section, tensors)
    _check_steps(m["steps"], "steps", tensors, kernels)
    if "decoder" in m:
        _check_decoder(m["decoder"], tensors, kernels)
    return tensors


def _check_type(t, f: str, depth: int = 0) -> None:
    """A passthrough value's type (compiler/passthrough.py): tensor, or sequence/optional of a type."""
    if not isinstance(t, dict) or t.get("kind") not in ("tensor", "sequence", "optional") or depth > 8:
        raise _fail(f, "a type object with kind tensor, sequence or optional", t)
    if t["kind"] != "tensor":
        _check_type(t.get("elem"), f"{f}.elem", depth + 1)
        return
    if t.get("dtype") not in DTYPE_BYTES:
        raise _fail(f"{f}.dtype", f"one of {', '.join(DTYPE_BYTES)}", t.get("dtype"))
    shape = t.get("shape")
    if shape is not None and (not isinstance(shape, list) or len(shape) > 16
                              or not all(d is None or (_is_int(d) and 0 <= d < 2**32) for d in shape)):
        raise _fail(f"{f}.shape", "null or a list of at most 16 dims (integers >= 0 or null)", shape)


def _check_io(items: list, section: str, tensors: dict) -> None:
    for k, io in enumerate(items):
        f = f"{section}[{k}]"
        if not isinstance(io, dict):
            raise _fail(f, "an object", io)
        _get(io, "name", f, str, "a name string")
        dtype = io.get("dtype")
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise _fail(f"{f}.dtype", f"one of {', '.join(DTYPE_BYTES)}", dtype)
        shape = _shape(io.get("shape"), f"{f}.shape")
        tid = io.get("tensor")
        if not _is_int(tid) or tid not in tensors:
            raise _fail(f"{f}.tensor", "the id of a listed tensor", tid)
        t = tensors[tid]
        if tensor_bytes(dtype, _numel(shape)) != t["bytes"]:
            raise _fail(f"{f}.shape", f"{t['bytes']} bytes like tensor {tid}", f"{shape} of {dtype}")
        if "encoding" in io and (io["encoding"] != "string" or dtype != "int32"):
            raise _fail(f"{f}.encoding", '"string" on an int32 tensor of string ids', f"{io['encoding']!r} on {dtype}")


def _check_steps(steps: list, section: str, tensors: dict, kernels: dict) -> None:
    for k, s in enumerate(steps):
        f = f"{section}[{k}]"
        if not isinstance(s, dict):
            raise _fail(f, "an object", s)
        args = _get(s, "args", f, list, "a list of tensor ids")
        for j, a in enumerate(args):
            if not _is_int(a) or a not in tensors:
                raise _fail(f"{f}.args[{j}]", "the id of a listed tensor", a)
        kid = s.get("kernel")
        if not isinstance(kid, str) or kid not in kernels:
            raise _fail(f"{f}.kernel", "the id of a listed kernel", kid)
        # Runtimes branch on the family (a LoRA-Switch merge may be skipped): it must be the kernel's.
        fam = s.get("family")
        if not isinstance(fam, str) or fam != kernels[kid].get("family", fam):
            raise _fail(f"{f}.family", f"the family of kernel {kid} ({kernels[kid].get('family')!r})", fam)
        cands = s.get("candidates", {})
        if not isinstance(cands, dict):
            raise _fail(f"{f}.candidates", "an object (backend → kernel ids)", cands)
        for backend, ids in cands.items():
            if not isinstance(ids, list) or not ids:
                raise _fail(f"{f}.candidates.{backend}", "a non-empty list of kernel ids", ids)
            for j, c in enumerate(ids):
                if not isinstance(c, str) or c not in kernels:
                    raise _fail(f"{f}.candidates.{backend}[{j}]", "the id of a listed kernel", c)
                if backend in ("wasm", "webgpu") and kernels[c].get("backend", "wasm") != backend:
                    raise _fail(f"{f}.candidates.{backend}[{j}]", f"a {backend} kernel",
                                f"{c} ({kernels[c].get('backend', 'wasm')})")


def _check_decoder(d, tensors: dict, kernels: dict) -> None:
    """The decoder section (docs/decoders.md): the decode plan, sizes and the KV cache tensors."""
    if not isinstance(d, dict):
        raise _fail("decoder", "an object", d)
    T = _int(d, "max_context", "decoder", 1)
    _int(d, "prefill_len", "decoder", 1, T)
    _int(d, "vocab", "decoder", 1)
    for key in ("token_input", "position_input", "logits_output"):
        _get(d, key, "decoder", str, "a name string")
    dec = _get(d, "decode", "decoder", dict, "an object")
    for section in ("inputs", "outputs", "steps"):
        _get(dec, section, "decoder.decode", list, "a list")
    for section in ("inputs", "outputs"):
        _check_io(dec[section], f"decoder.decode.{section}", tensors)
    _check_steps(dec["steps"], "decoder.decode.steps", tensors, kernels)
    for k, layer in enumerate(_get(d, "layers", "decoder", list, "a list")):
        f = f"decoder.layers[{k}]"
        if not isinstance(layer, dict):
            raise _fail(f, "an object", layer)
        for key in ("key", "value"):
            tid = layer.get(key)
            if not _is_int(tid) or tid not in tensors or tensors[tid]["storage"] != "arena":
                raise _fail(f"{f}.{key}", "the id of a listed arena tensor (a KV cache)", tid)
    if d.get("tokenizer") is not None:
        _rel_file(_get(d, "tokenizer", "decoder", dict, "an object with file and sha256"), "decoder.tokenizer")
