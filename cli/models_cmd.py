"""`nnjit models list [--json]` and `nnjit models build NAME -o FILE`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from nnjit.compiler.errors import NnjitError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("models", help="list or build the models of the zoo")
    sub = p.add_subparsers(dest="models_command", metavar="{list,build}")

    pl = sub.add_parser("list", help="list the zoo models")
    pl.add_argument("--json", action="store_true", help="print a JSON array")

    pb = sub.add_parser("build", help="write one zoo model as an ONNX file")
    pb.add_argument("name", help="model name (see `nnjit models list`)")
    pb.add_argument("-o", "--output", required=True, metavar="FILE", help="ONNX file to write")
    pb.add_argument(
        "--fresh",
        action="store_true",
        help="rebuild from scratch instead of copying the cached build",
    )
    p.set_defaults(func=main)
    return p


def _shape(shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _list(args) -> int:
    from nnjit.bench import zoo

    models = zoo.list_models()
    if args.json:
        print(json.dumps(models, indent=1))
        return 0
    width = max(len(m["name"]) for m in models)
    for m in models:
        ins = " ".join(f"{i['name']}:{i['dtype']}{_shape(i['shape'])}" for i in m["inputs"])
        print(f"{m['name']:<{width}}  {ins}")
        print(f"{'':<{width}}  {m['description']}")
    return 0


def _build(args) -> int:
    from nnjit.bench import zoo

    zoo.spec(args.name)  # a bad name fails here, before any heavy import
    t0 = time.perf_counter()
    if args.fresh:
        out = zoo.build(args.name, args.output)
    else:
        out = zoo.copy_cached(args.name, args.output)
    ops = sum(zoo.op_histogram(out).values())
    print(f"wrote {out} ({args.name}, {ops} nodes, {time.perf_counter() - t0:.1f} s)")
    return 0


def main(args) -> int:
    try:
        if args.models_command == "list":
            return _list(args)
        if args.models_command == "build":
            return _build(args)
        print("usage: nnjit models {list [--json], build NAME -o FILE}", file=sys.stderr)
        return 2
    except NnjitError as e:
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return e.exit_code
