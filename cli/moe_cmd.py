"""`nnjit moe-plan MODEL.onnx|BUNDLE --calib DATA.npz (--resident N | --budget-bytes B) -o PLAN.json`:
profile expert use on calibration data and write a committee plan (docs/moe.md)."""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("moe-plan", help="pick the resident experts of a MoE model from calibration data")
    p.add_argument("model", help="ONNX model (compiled here for wasm) or a compiled bundle directory")
    p.add_argument("--calib", required=True, metavar="DATA.npz",
                   help="calibration inputs: one array per model input, rows along the first axis")
    p.add_argument("--shape", action="append", metavar="NAME=8x64",
                   help="for an ONNX model: bind an input's shape (the calibration batch); repeatable")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--resident", type=int, metavar="N", help="experts resident per MoE layer")
    size.add_argument("--budget-bytes", type=int, metavar="B", help="bytes of expert weights resident, all layers")
    p.add_argument("-o", "--output", required=True, metavar="PLAN.json")
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    import numpy as np

    from nnjit.compiler import moe_plan
    from nnjit.compiler.errors import InputError
    try:
        calib = dict(np.load(args.calib))
    except (OSError, ValueError) as e:
        raise InputError(f"--calib {args.calib}: not a readable .npz ({e})") from None
    with tempfile.TemporaryDirectory() as td:
        bundle = Path(args.model)
        if not bundle.is_dir():
            from nnjit.compiler.onnx_import import parse_shape_args
            from nnjit.compiler.pipeline import compile_model
            compile_model(args.model, td, parse_shape_args(args.shape), backends=("wasm",))
            bundle = Path(td)
        plan = moe_plan.plan(bundle, calib, args.resident, args.budget_bytes)
    plan["bundle"] = str(args.model)
    moe_plan.write(plan, args.output)
    print(json.dumps({"plan": args.output, "resident": plan["resident"],
                      "calibration_batches": plan["calibration_batches"],
                      "layers": [{"node": lay["node"], "committee": lay["committee"], "ranking": lay["ranking"]}
                                 for lay in plan["layers"]]}))
    return 0
