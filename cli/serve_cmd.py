"""`nnjit serve DIR`: serve a directory (e.g. bundles and a page) with the runtime under /nnjit/,
cross-origin isolated (COOP/COEP), until Ctrl-C."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nnjit.browsers.server import REPO, StaticServer

from .run_cmd import UsageError


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="static server with COOP/COEP for bundles and pages",
        description="Serve DIR at / and the nnjit runtime at /nnjit/ on 127.0.0.1, with COOP/COEP headers.")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0 picks a free one; default 8000)")
    p.set_defaults(func=main)
    return p


def main(args) -> int:
    root = Path(args.dir)
    try:
        if not root.is_dir():
            raise UsageError(f"{root}: not a directory")
        try:
            server = StaticServer({"/": root, "/nnjit/": REPO / "web_runtime"}, port=args.port)
        except OSError as e:
            raise UsageError(f"cannot listen on 127.0.0.1:{args.port} ({e.strerror or e})") from None
    except UsageError as e:
        print(f"UsageError: {e}", file=sys.stderr)
        return 2
    print(f"Serving {root.resolve()} at {server.url('/')}", flush=True)
    print(f"  runtime: import {{ Session }} from '{server.url('/nnjit/index.js')}'", flush=True)
    if (root / "manifest.json").is_file():
        print(f"  bundle:  await Session.create('{server.url('/')}')", flush=True)
    print("Ctrl-C to stop.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
