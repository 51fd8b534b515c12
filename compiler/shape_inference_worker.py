"""onnx shape inference in a long-lived child process.

onnx's C++ shape inference aborts the whole process on some malformed models (fuzzing the importer
found a SIGABRT in onnx 1.23.2), and an abort cannot be caught in Python. Running it in a child
turns that into a named ShapeError and keeps the compiler alive. One child serves every call of a
process (starting Python + onnx per call would cost ~0.3 s); a dead or hung child is replaced on the
next call. Messages on the child's stdin/stdout: 8-byte length + payload, a status byte first."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading

import onnx

from .errors import ShapeError

_LEN = struct.Struct("<Q")


def _read_exact(f, n: int) -> bytes:
    chunks, left = [], n
    while left:
        b = f.read(left)
        if not b:
            raise EOFError
        chunks.append(b)
        left -= len(b)
    return b"".join(chunks)


def _send(f, status: bytes, payload: bytes) -> None:
    f.write(_LEN.pack(len(payload) + 1) + status + payload)
    f.flush()


def _recv(f) -> tuple[bytes, bytes]:
    msg = _read_exact(f, _LEN.unpack(_read_exact(f, _LEN.size))[0])
    return msg[:1], msg[1:]


def _serve() -> None:
    from onnx import shape_inference
    fin, fout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies may reach the pipe
    while True:
        try:
            _, data = _recv(fin)
        except EOFError:
            return
        try:
            out = shape_inference.infer_shapes(onnx.load_model_from_string(data), strict_mode=False,
                                               data_prop=True)
            # The caller still holds the initializers: send back only what inference added.
            del out.graph.initializer[:]
            _send(fout, b"M", out.SerializeToString())
        except Exception as e:
            _send(fout, b"E", ((str(e).strip().splitlines() or [type(e).__name__])[0]).encode())


class _Worker:
    def __init__(self):
        self.proc = None
        self.lock = threading.Lock()

    def _start(self):
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)

    def _kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def infer(self, model: onnx.ModelProto, path) -> onnx.ModelProto:
        data = _without_weights(model).SerializeToString()
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                _send(self.proc.stdin, b"M", data)
                status, payload = _recv(self.proc.stdout)
            except (EOFError, BrokenPipeError):
                code = self.proc.wait()
                self.proc = None
                how = f"signal {-code}" if code < 0 else f"exit {code}"
                raise ShapeError(f"{path}: onnx shape inference crashed ({how}) on this model") from None
            except BaseException:
                self._kill()  # interrupted mid-message (a time limit): the pipe is out of step
                raise
        if status == b"E":
            raise ShapeError(f"{path}: shape inference failed: {payload.decode(errors='replace')}")
        out = onnx.ModelProto()
        out.ParseFromString(payload)
        del out.graph.input[len(model.graph.input):]  # the weights declared as inputs by _without_weights
        out.graph.initializer.extend(model.graph.initializer)
        return out


_SMALL = 4096  # elements: shape arithmetic reads small int tensors; no weight of this size matters to it


def _without_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its large initializers declared as typed graph inputs instead of carried.
    Inference needs only their types and shapes, and a 1.6 GB decoder copied through the pipe, parsed
    and re-serialized by onnx in the child held several copies at once (a test machine stalled)."""
    def small(t):
        n = 1
        for d in t.dims:
            n *= d
        return n <= _SMALL or t.data_type == onnx.TensorProto.INT64
    g = model.graph
    if all(small(t) for t in g.initializer):
        return model
    light = onnx.ModelProto(ir_version=model.ir_version)
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    lg = light.graph
    lg.name = g.name
    for field in ("node", "input", "output", "value_info", "sparse_initializer"):
        getattr(lg, field).extend(getattr(g, field))
    declared = {i.name for i in g.input}
    for t in g.initializer:
        if small(t):
            lg.initializer.append(t)
        elif t.name not in declared:
            lg.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return light


_worker = _Worker()


def infer_shapes(model: onnx.ModelProto, path="model") -> onnx.ModelProto:
    """onnx.shape_inference.infer_shapes(strict_mode=False, data_prop=True), isolated."""
    return _worker.infer(model, path)


if __name__ == "__main__":
    _serve()
