"""`nnjit browsers list [--json]` and `nnjit browsers probe [--json] [--ids ID ...]`: the browser matrix
(browsers/matrix.toml) and what of it works on this machine (nnjit.browsers.probe)."""
from __future__ import annotations

import argparse
import json
import sys

from nnjit.compiler.errors import NnjitError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("browsers", help="list the browser matrix or probe which configurations work here")
    sub = p.add_subparsers(dest="browsers_command", metavar="{list,probe}")
    for name, text in (("list", "print the configurations of the matrix"),
                       ("probe", "launch each engine × driver once and mark every configuration available or not")):
        s = sub.add_parser(name, help=text, description=text)
        s.add_argument("--json", action="store_true", help="print JSON instead of text")
        s.add_argument("--matrix", metavar="FILE", help="matrix file (default: the package's browsers/matrix.toml)")
        if name == "probe":
            s.add_argument("--ids", nargs="+", metavar="ID", help="probe only what these configurations need")
            s.add_argument("--timeout", type=float, default=90.0, metavar="S",
                           help="seconds per engine × driver before it is killed and reported as hung (default 90)")
    p.set_defaults(func=main)
    return p


def _list(args, matrix) -> int:
    if args.json:
        print(json.dumps([c.to_json() for c in matrix.configs], indent=1))
        return 0
    width = max(len(c.id) for c in matrix.configs)
    print(f"{'id':<{width}}  {'engine':<8} {'driver':<10} {'backend':<7} threads  cpu  tier")
    for c in matrix.configs:
        rate = "-" if c.cpu_throttle is None else f"{c.cpu_throttle:g}x"
        print(f"{c.id:<{width}}  {c.engine:<8} {c.driver:<10} {c.backend:<7} {c.threads:>7}  {rate:>3}  {c.tier}")
    print(f"{len(matrix.configs)} configurations ({matrix.path})")
    return 0


def _yes(v) -> str:
    return "yes" if v else "no"


def _group_text(g: dict) -> str:
    head = f"{g['engine']} / {g['driver']}: "
    if not g.get("launched"):
        return head + f"NOT LAUNCHED — {g.get('reason')}"
    lines = [head + f"launched in {g['launch_s']} s — version {g.get('version')}"]
    f = g.get("features")
    if not f:
        return "\n".join(lines + [f"  probe failed: {g.get('reason')}"])
    w, t, gpu, m, o = f["wasm"], f["threads"], f["webgpu"], f["memory"], f["observers"]
    lines.append(f"  user agent: {g.get('user_agent')}")
    lines.append(f"  wasm: SIMD {_yes(w.get('simd'))} (runs: {_yes(w.get('simd_runs'))}), relaxed SIMD {_yes(w.get('relaxed_simd'))}, atomics {_yes(w.get('atomics'))}")
    lines.append(f"  threads: {_yes(t.get('available'))} (crossOriginIsolated {_yes(t['cross_origin_isolated'])}, "
                 f"SharedArrayBuffer {_yes(t['shared_array_buffer'])}, worker atomics {_yes(t['worker_atomics'])})"
                 + (f" — {t['reason']}" if t.get("reason") else ""))
    if gpu.get("available"):
        a = gpu["adapter"]
        name = " ".join(x for x in (a.get("vendor"), a.get("architecture"), a.get("description")) if x) or "unnamed adapter"
        lines.append(f"  webgpu: yes — {name}{' (fallback adapter)' if a.get('is_fallback_adapter') else ''}, "
                     f"{len(gpu['features'])} features, max workgroup {gpu['limits']['maxComputeInvocationsPerWorkgroup']}")
    else:
        lines.append(f"  webgpu: no — {gpu.get('reason')}")
    uasm = m.get("measure_user_agent_specific_memory")
    lines.append(f"  memory: performance.memory {_yes(m.get('performance_memory'))}, measureUserAgentSpecificMemory "
                 + (f"yes ({uasm['ms']} ms)" if uasm else f"no — {m.get('measure_reason')}"))
    lines.append(f"  observers: event timing {_yes(o['event_timing'])}, longtask {_yes(o['longtask'])}, "
                 f"long-animation-frame {_yes(o['long_animation_frame'])}, paint {_yes(o['paint'])}, "
                 f"LCP {_yes(o['largest_contentful_paint'])}")
    cpu = f["cpu_throttle"]
    lines.append(f"  rAF: {f['raf'].get('fps')} fps; cpu throttle: "
                 + (f"yes (rate {cpu['rate']:g} → {cpu['slowdown']}× slower)" if cpu.get("available") else f"no — {cpu.get('reason')}"))
    return "\n".join(lines)


def _probe(args, matrix) -> int:
    from nnjit.browsers.probe import probe

    from .run_cmd import UsageError

    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout:g}")
    for i in args.ids or ():
        matrix.get(i)  # an unknown id is a usage error before anything launches
    show = None if args.json else (lambda g: print(_group_text(g), flush=True))
    report = probe(matrix, ids=args.ids, timeout_s=args.timeout, on_group=show)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    rows = report["configs"]
    print(f"\n{sum(r['available'] for r in rows)} of {len(rows)} configurations available here")
    for r in rows:
        if not r["available"]:
            print(f"  unavailable  {r['id']}: {r['reason']}")
    return 0


def main(args) -> int:
    from nnjit.browsers.matrix import load_matrix

    if args.browsers_command not in ("list", "probe"):
        print("usage: nnjit browsers {list [--json], probe [--json] [--ids ID ...]}", file=sys.stderr)
        return 2
    try:
        matrix = load_matrix(args.matrix)
        return _list(args, matrix) if args.browsers_command == "list" else _probe(args, matrix)
    except NnjitError as e:
        print(f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
