"""`nnjit` command line: dispatches to one module per subcommand."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from . import (bench_cmd, browsers_cmd, compile_cmd, generate_cmd, models_cmd, moe_cmd, ops_cmd, report_cmd,
                   run_cmd, serve_cmd)
    p = argparse.ArgumentParser(prog="nnjit", description="Compile ONNX models to WebAssembly SIMD bundles "
                                "and run them in browsers.")
    sub = p.add_subparsers(dest="command", required=True)
    for mod in (compile_cmd, run_cmd, generate_cmd, serve_cmd, models_cmd, moe_cmd, ops_cmd, browsers_cmd, bench_cmd,
                report_cmd):
        mod.add_parser(sub)
    return p


def main(argv=None) -> int:
    from nnjit.compiler.errors import NnjitError
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except NnjitError as e:
        print(f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)  # always one line
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
