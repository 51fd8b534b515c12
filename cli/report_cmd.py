"""`nnjit report RESULTS_DIR [-o report.html] [--markdown [--summary]]`: the QoE results (results.csv, or
results.parquet) as one offline HTML file (tables and embedded plots) or as markdown tables for a
terminal (bench/report.py)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("report", help="render results/results.csv of `nnjit bench` as HTML (plots embedded) or markdown",
                              description="Render the results of `nnjit bench`.")
    p.add_argument("results", metavar="RESULTS_DIR", help="the --out directory of nnjit bench (holds results.csv "
                   "or results.parquet; the CSV is read when both are there)")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE", help="HTML file to write (default report.html)")
    p.add_argument("--markdown", action="store_true", help="print the tables as markdown instead of writing HTML")
    p.add_argument("--summary", action="store_true", help="with --markdown: only the run facts, the headline, the "
                   "native baselines and the n/a reasons (what docs/benchmarks_qoe.md holds), not every cell")
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    from nnjit.bench.report import render_html, render_markdown
    from nnjit.bench.results import results_file

    from .run_cmd import UsageError

    path = results_file(Path(args.results))
    if not path.is_file():
        raise UsageError(f"{Path(args.results) / 'results.csv'}: no such file, nor results.parquet "
                         f"(run `nnjit bench --out {args.results}` first)")
    if args.markdown:
        print(render_markdown(Path(args.results), summary=args.summary))
        return 0
    Path(args.output).write_text(render_html(Path(args.results)), encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
