"""Tiny bundles written by hand (inline WAT kernels, manifest per docs/bundle.md), so the runtime
tests never depend on the compiler."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import wasmtime

DTYPE_BYTES = {"float32": 4, "int64": 8, "int32": 4, "bool": 1}

# out[i] = x[i]·y[i] + w[i] over n floats: f32x4 body, scalar tail; {madd} is the vector multiply-add.
MADD_WAT = """(module
  (import "env" "memory" (memory 1))
  (func (export "run") (param $x i32) (param $y i32) (param $w i32) (param $o i32)
    (local $i i32)
    (block $done (loop $vec
      (br_if $done (i32.gt_u (i32.add (local.get $i) (i32.const 16)) (i32.const {nbytes})))
      (v128.store (i32.add (local.get $o) (local.get $i)) {madd})
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $vec)))
    (block $end (loop $tail
      (br_if $end (i32.ge_u (local.get $i) (i32.const {nbytes})))
      (f32.store (i32.add (local.get $o) (local.get $i))
        (f32.add (f32.mul (f32.load (i32.add (local.get $x) (local.get $i)))
                          (f32.load (i32.add (local.get $y) (local.get $i))))
                 (f32.load (i32.add (local.get $w) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $tail)))))
"""


def madd_wat(n: int, relaxed: bool) -> str:
    x, y, w = (f"(v128.load (i32.add (local.get ${v}) (local.get $i)))" for v in "xyw")
    madd = f"(f32x4.relaxed_madd {x} {y} {w})" if relaxed else f"(f32x4.add (f32x4.mul {x} {y}) {w})"
    return MADD_WAT.replace("{nbytes}", str(4 * n)).replace("{madd}", madd)


def copy_wat(nbytes: int) -> str:
    return f"""(module (import "env" "memory" (memory 1))
  (func (export "run") (param $src i32) (param $dst i32)
    (memory.copy (local.get $dst) (local.get $src) (i32.const {nbytes}))))"""


def i64_to_f32_wat(n: int) -> str:
    return f"""(module (import "env" "memory" (memory 1))
  (func (export "run") (param $x i32) (param $y i32) (local $i i32)
    (block $end (loop $l
      (br_if $end (i32.ge_u (local.get $i) (i32.const {n})))
      (f32.store (i32.add (local.get $y) (i32.shl (local.get $i) (i32.const 2)))
        (f32.convert_i64_s (i64.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))))"""


TRAP_WAT = """(module (import "env" "memory" (memory 1))
  (func (export "run") (param i32) (param i32) unreachable))"""

# bool → bool negation, byte by byte (the WGSL twin works on whole words).
NOT_WAT = """(module (import "env" "memory" (memory 1))
  (func (export "run") (param $x i32) (param $y i32) (local $i i32)
    (block $end (loop $l
      (br_if $end (i32.ge_u (local.get $i) (i32.const {n})))
      (i32.store8 (i32.add (local.get $y) (local.get $i))
        (i32.xor (i32.load8_u (i32.add (local.get $x) (local.get $i))) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))))"""

# The WebGPU twins, per docs/kernels_wgsl.md: binding i = argument i, one thread per element
# (or per 4-byte word), a bounds check for the threads past the end of the one workgroup.
MADD_WGSL = """// out = x * y + w
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x >= {n}u) { return; }
  o[g.x] = x[g.x] * y[g.x] + w[g.x];
}
"""

COPY_WGSL = """@binding(0) @group(0) var<storage, read> src: array<u32>;
@binding(1) @group(0) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < {words}u) { dst[g.x] = src[g.x]; }
}
"""

NOT_WGSL = """@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  if (g.x < {words}u) { y[g.x] = ~x[g.x] & 0x01010101u; }
}
"""


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


ALIGN = 256  # the planner's tensor alignment: WebGPU binds buffers only at 256-byte aligned offsets


def write_bundle(out: Path, *, inputs: dict, outputs: dict, weights: dict | None = None, temps: dict | None = None,
                 kernels: dict, steps: list, gpu_kernels: dict | None = None) -> Path:
    """inputs/outputs/temps: name → (dtype, shape); weights: name → array; kernels: id → (plain WAT,
    relaxed WAT or None); gpu_kernels: id → (WGSL, dispatch [x, y, z]); steps: (wasm kernel id,
    [tensor names]) or (wasm id, [names], webgpu id). Arena tensors get their own space."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "kernels").mkdir(exist_ok=True)
    weights, temps = weights or {}, temps or {}
    tensors, ids = [], {}

    def add(name, dtype, shape, storage, offset):
        ids[name] = len(tensors)
        nbytes = int(np.prod(shape, dtype=np.int64)) * DTYPE_BYTES[dtype]
        tensors.append({"id": ids[name], "name": name, "dtype": dtype, "shape": list(shape), "bytes": nbytes,
                        "storage": storage, "offset": offset})
        return nbytes

    blob = bytearray()
    for name, arr in weights.items():
        blob += bytes(-len(blob) % ALIGN)
        add(name, str(arr.dtype), arr.shape, "weight", len(blob))
        blob += arr.tobytes()
    blob += bytes(-len(blob) % ALIGN)
    arena = 0
    for group in (inputs, temps, outputs):
        for name, (dtype, shape) in group.items():
            arena += add(name, dtype, shape, "arena", arena)
            arena += -arena % ALIGN
    weights_base = 64
    arena_base = weights_base + len(blob)
    (out / "weights.bin").write_bytes(bytes(blob))

    kmeta = []
    for kid, (plain, relaxed) in kernels.items():
        wasm = wasmtime.wat2wasm(plain)
        (out / f"kernels/{kid}.wasm").write_bytes(wasm)
        entry = {"id": kid, "backend": "wasm", "family": "test", "entry": "run", "config": {},
                 "file": f"kernels/{kid}.wasm", "sha256": _sha(wasm), "relaxed": None}
        if relaxed is not None:
            rw = wasmtime.wat2wasm(relaxed)
            (out / f"kernels/{kid}.relaxed.wasm").write_bytes(rw)
            entry["relaxed"] = {"file": f"kernels/{kid}.relaxed.wasm", "sha256": _sha(rw)}
        kmeta.append(entry)
    for kid, (wgsl, dispatch) in (gpu_kernels or {}).items():
        data = wgsl.encode()
        (out / f"kernels/{kid}.wgsl").write_bytes(data)
        kmeta.append({"id": kid, "backend": "webgpu", "family": "test", "entry": "main", "config": {},
                      "file": f"kernels/{kid}.wgsl", "sha256": _sha(data), "dispatch": list(dispatch)})

    def step(i, kid, args, gpu_kid=None):
        candidates = {"wasm": [kid], **({"webgpu": [gpu_kid]} if gpu_kid else {})}
        return {"id": i, "op": "Test", "node": f"n{i}", "family": "test", "args": [ids[a] for a in args],
                "kernel": kid, "candidates": candidates}

    io = lambda group: [{"name": n, "dtype": d, "shape": list(s), "tensor": ids[n]} for n, (d, s) in group.items()]
    manifest = {
        "format": "nnjit-bundle", "version": 1,
        "model": {"name": out.name, "source_sha256": "0" * 64, "opset": 17},
        "inputs": io(inputs), "outputs": io(outputs), "tensors": tensors,
        "weights": {"file": "weights.bin", "bytes": len(blob), "sha256": _sha(bytes(blob))},
        "memory": {"weights_base": weights_base, "arena_base": arena_base, "arena_bytes": arena,
                   "intermediate_bytes": arena, "total_bytes": arena_base + arena + 64},
        "steps": [step(i, *s) for i, s in enumerate(steps)],
        "kernels": kmeta,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return out




N = 10  # not a multiple of 4: the kernels' scalar tails run too
W = np.linspace(-1.0, 1.0, N, dtype=np.float32).reshape(2, 5)


def make_bundles(root: Path) -> dict[str, Path]:
    """madd: z = x·y + w (w a weight), relaxed variant for k0, WGSL twins g0/g1; ids: int64 → float32;
    trap: a kernel that traps; square: z = x·x + w (one tensor in two bindings of a step), wasm and webgpu;
    bools: y = not x over 3 bools (tensors that are not whole words), wasm and webgpu."""
    f32 = lambda *s: ("float32", s)
    madd = write_bundle(
        root / "madd",
        inputs={"x": f32(2, 5), "y": f32(2, 5)}, weights={"w": W}, temps={"t": f32(2, 5)}, outputs={"z": f32(2, 5)},
        kernels={"k0": (madd_wat(N, False), madd_wat(N, True)), "k1": (copy_wat(4 * N), None)},
        gpu_kernels={"g0": (MADD_WGSL.replace("{n}", str(N)), [1, 1, 1]), "g1": (COPY_WGSL.replace("{words}", str(N)), [1, 1, 1])},
        steps=[("k0", ["x", "y", "w", "t"], "g0"), ("k1", ["t", "z"], "g1")],
    )
    ids = write_bundle(
        root / "ids", inputs={"ids": ("int64", (3,))}, outputs={"f": f32(3)},
        kernels={"k0": (i64_to_f32_wat(3), None)}, steps=[("k0", ["ids", "f"])],
    )
    trap = write_bundle(
        root / "trap", inputs={"x": f32(4)}, outputs={"y": f32(4)},
        kernels={"k0": (TRAP_WAT, None)}, steps=[("k0", ["x", "y"])],
    )
    square = write_bundle(
        root / "square",
        inputs={"x": f32(2, 5)}, weights={"w": W}, temps={"t": f32(2, 5)}, outputs={"z": f32(2, 5)},
        kernels={"k0": (madd_wat(N, False), None), "k1": (copy_wat(4 * N), None)},
        gpu_kernels={"g0": (MADD_WGSL.replace("{n}", str(N)), [1, 1, 1]), "g1": (COPY_WGSL.replace("{words}", str(N)), [1, 1, 1])},
        steps=[("k0", ["x", "x", "w", "t"], "g0"), ("k1", ["t", "z"], "g1")],
    )
    bools = write_bundle(
        root / "bools", inputs={"x": ("bool", (3,))}, outputs={"y": ("bool", (3,))},
        kernels={"k0": (NOT_WAT.replace("{n}", "3"), None)},
        gpu_kernels={"g0": (NOT_WGSL.replace("{words}", "1"), [1, 1, 1])},
        steps=[("k0", ["x", "y"], "g0")],
    )
    return {"madd": madd, "ids": ids, "trap": trap, "square": square, "bools": bools}


def madd_onnx(path: Path) -> Path:
    """The madd bundle's model in ONNX (Mul then Add of the constant w), for the reference runs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 5])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "y"], ["t"]), helper.make_node("Add", ["t", "w"], ["z"])],
        "madd", [vi("x"), vi("y")], [vi("z")], [numpy_helper.from_array(W, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # onnxruntime-web 1.30 reads up to IR 10; keep well inside
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
