"""`nnjit ops [--json]`: the ops the compiler claims and how they fare on onnx's node tests."""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ops", help="supported ops and their ONNX conformance (from the last `make conformance`)")
    p.add_argument("--json", action="store_true", help="print a JSON array, one object per op")
    p.add_argument("--all", action="store_true", help="also list the suite's ops the compiler does not claim")
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    from nnjit.bench import conformance
    from nnjit.compiler.lower import supported_ops

    doc = conformance.load_results()
    claimed = supported_ops()
    if doc is None:
        print(f"no conformance results ({conformance.results_path()} nor {conformance.DOCS_JSON}); "
              "produce them with `make conformance` "
              "(or `python -m nnjit.bench.conformance --write-docs`)", file=sys.stderr)
        if args.json:
            print(json.dumps([{"op": op, "wasm": True, "webgpu": True, "passed": None, "total": None} for op in claimed],
                             indent=1))
        return 1
    rows = {r["op"]: r for r in doc["ops"]}
    # Ops claimed now but absent from older results still get a row (unknown results).
    out = [rows.get(op, {"op": op, "wasm": True, "webgpu": True, "passed": None, "total": None}) for op in claimed]
    if args.all:
        out += [r for r in doc["ops"] if r["op"] not in claimed]
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    m = doc["meta"]
    print(f"conformance of {m['date']} (onnx {m['onnx']} node tests, `{m['command']}`); "
          "passed/total per backend, opsets with passing tests, latest schema version")
    w = max(len(r["op"]) for r in out)
    print(f"{'op':<{w}}  wasm webgpu  {'wasm':>7}  {'webgpu':>7}  {'opsets':<14} latest  gaps")
    for r in out:
        def frac(b):
            return "?" if r.get("total") is None else f"{r[f'passed_{b}']}/{r['total']}"
        ops = ",".join(map(str, r.get("opsets_passed", []))) or "-"
        gaps = r.get("gaps") or ""
        print(f"{r['op']:<{w}}  {'yes' if r['wasm'] else 'no':<4} {'yes' if r['webgpu'] else 'no':<6}  "
              f"{frac('wasm'):>7}  {frac('webgpu'):>7}  {ops:<14} {str(r.get('latest_since') or '-'):<6}  "
              f"{gaps[:120] + ('…' if len(gaps) > 120 else '')}")
    return 0
