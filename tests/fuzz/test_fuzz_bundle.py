"""Fuzz the bundle loader: mutate a valid small bundle's manifest.json, weights.bin and kernel files
(with and without fixing the sha256). NativeSession must raise BundleError (InputError for runs) or work."""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnjit.compiler.errors import BundleError, InputError
from nnjit.compiler.ir import NP_DTYPES
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

from ..op_cases import CASES
from ._harness import FUZZ, expect_named

_BASE: dict[str, Path] = {}
BASES = ["MatMul_bias_residual_gelu", "Gather_runtime_idx", "Conv_3x3_p1"]


def base_bundle(name: str) -> Path:
    if name not in _BASE:
        d = Path(tempfile.mkdtemp(prefix="nnjit-fuzz-"))
        onnx.save(CASES[name][0], d / "m.onnx")
        compile_model(d / "m.onnx", d / "b", backends=("wasm", "webgpu"))
        _BASE[name] = d / "b"
    return _BASE[name]


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


VALUES = st.one_of(
    st.sampled_from([-1, 0, 1, 7, 255, 256, 2**31 - 1, 2**31, 2**32, 2**40, 2**64, -2**63]),
    st.integers(-10**6, 10**9), st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=6),
    st.sampled_from(["k0", "g0", "weights.bin", "../manifest.json", "/etc/passwd", "kernels/k0.wasm", "float32",
                     "int64", "arena", "weight", "nnjit-bundle"]),
    st.lists(st.integers(-2, 300), max_size=4), st.just({}), st.just([]),
)


def apply_mutation(m: dict, mut: dict) -> dict:
    """mut: {"path": [...], "op": "set"|"delete"|"append", "value": ...} on the manifest."""
    m = copy.deepcopy(m)
    path = mut["path"]
    if not path:
        return mut["value"] if mut["op"] == "set" else m
    parent = m
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    if mut["op"] == "set":
        parent[last] = mut["value"]
    elif mut["op"] == "delete":
        del parent[last]
    elif mut["op"] == "append" and isinstance(parent[last], list):
        parent[last].append(mut["value"])
    return m


def apply_file_mutation(d: Path, m: dict, fm: dict) -> dict:
    """fm: {"file": rel, "kind": "truncate"|"flip"|"append"|"delete", "at": int, "fix_sha": bool}."""
    p = d / fm["file"]
    if not p.is_file():
        return m
    data = bytearray(p.read_bytes())
    at = fm["at"] % (len(data) + 1)
    if fm["kind"] == "truncate":
        data = data[:at]
    elif fm["kind"] == "flip" and data:
        data[at % len(data)] ^= 0x5A
    elif fm["kind"] == "append":
        data += b"\x00" * (at + 1)
    elif fm["kind"] == "delete":
        p.unlink()
        return m
    p.write_bytes(bytes(data))
    if fm["fix_sha"]:
        digest = hashlib.sha256(bytes(data)).hexdigest()
        for entry in [m.get("weights", {})] + m.get("kernels", []) + [k.get("relaxed") or {} for k in m.get("kernels", [])]:
            if isinstance(entry, dict) and entry.get("file") == fm["file"]:
                entry["sha256"] = digest
                if entry is m.get("weights") and fm.get("fix_bytes"):
                    entry["bytes"] = len(data)
    return m


def feeds_for_manifest(m: dict):
    feeds = {}
    for spec in m["inputs"]:
        dt = NP_DTYPES[spec["dtype"]]
        feeds[spec["name"]] = np.zeros(spec["shape"], dt) if np.prod(spec["shape"]) < 2**20 else None
    return feeds


def run_case(base: str, muts: list[dict], fmuts: list[dict], run: bool = True):
    """Lay out a mutated copy of the base bundle, open it and (when it opens) run it once."""
    src = base_bundle(base)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "b"
        shutil.copytree(src, d)
        m = json.loads((d / "manifest.json").read_text())
        for fm in fmuts:
            m = apply_file_mutation(d, m, fm)
        for mut in muts:
            m = apply_mutation(m, mut)
        raw = mut_raw = None
        for mut in muts:
            if mut["op"] == "raw":
                mut_raw = mut["value"]
        raw = mut_raw if mut_raw is not None else json.dumps(m)
        (d / "manifest.json").write_text(raw) if isinstance(raw, str) else (d / "manifest.json").write_bytes(raw)
        kernel_changed = any(fm["fix_sha"] and fm["file"].startswith("kernels/") for fm in fmuts)

        def go():
            s = NativeSession(d)
            if run and not kernel_changed:  # an altered kernel that still validates may loop: load only
                feeds = feeds_for_manifest(s.manifest)
                if all(v is not None for v in feeds.values()):
                    s.run(feeds)
        return expect_named("bundle", go, (BundleError, InputError))


@st.composite
def manifest_mutations(draw):
    base = draw(st.sampled_from(BASES))
    m = json.loads((base_bundle(base) / "manifest.json").read_text())
    paths = [p for p in _paths(m) if not (p and p[0] == "model")]
    muts = []
    for _ in range(draw(st.integers(1, 3))):
        path = list(draw(st.sampled_from(paths)))
        op = draw(st.sampled_from(["set", "set", "set", "delete", "append"]))
        if op == "delete" and not path:
            op = "set"
        mut = {"path": path, "op": op, "value": draw(VALUES)}
        try:
            m = apply_mutation(m, mut)
        except (KeyError, IndexError, TypeError):
            break
        muts.append(mut)
        paths = [p for p in _paths(m) if not (p and p[0] == "model")] or [()]
    if draw(st.integers(0, 20)) == 0:
        muts.append({"path": [], "op": "raw", "value": draw(st.sampled_from(
            ["", "[]", "{", "null", "[" * 5000, '{"format": "nnjit-bundle", "version": 1}', "1" * 5000]))})
    return base, muts


@st.composite
def file_mutations(draw):
    base = draw(st.sampled_from(BASES))
    m = json.loads((base_bundle(base) / "manifest.json").read_text())
    files = ["weights.bin", "manifest.json"] + [k["file"] for k in m["kernels"]] + \
        [k["relaxed"]["file"] for k in m["kernels"] if k.get("relaxed")]
    fmuts = [{"file": draw(st.sampled_from(files)), "kind": draw(st.sampled_from(["truncate", "flip", "append", "delete"])),
              "at": draw(st.integers(0, 10**6)), "fix_sha": draw(st.booleans()), "fix_bytes": draw(st.booleans())}
             for _ in range(draw(st.integers(1, 2)))]
    return base, fmuts


@FUZZ
@given(manifest_mutations())
def test_mutated_manifests_fail_named(case):
    base, muts = case
    run_case(base, muts, [])


@FUZZ
@given(file_mutations())
def test_mutated_files_fail_named(case):
    base, fmuts = case
    run_case(base, [], fmuts)


@pytest.mark.parametrize("base", BASES)
def test_unmutated_bundles_run(base):
    assert run_case(base, [], []) is None
