"""A static HTTP server for the runtime, bundles and bench pages, on 127.0.0.1.

Every response is cross-origin isolated (COOP same-origin + COEP require-corp) so pages get
SharedArrayBuffer, wasm threads and the memory APIs; 127.0.0.1 is a secure context, so
crypto.subtle (bundle hash checks) works too. Directories are mounted under URL prefixes and can
be added and removed while the server runs, so one server can serve many bundles in a session.
"""
from __future__ import annotations

import http.server
import os
import posixpath
import sys
import threading
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}

MIME = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css",
    ".map": "application/json",
    ".onnx": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".ts": "text/plain; charset=utf-8",
}


def default_mounts() -> dict[str, Path]:
    """The repo's own trees: runtime, bench pages, and the npm packages' dists (onnxruntime-web,
    TF.js core and wasm backend, @huggingface/tokenizers) when npm installed them."""
    mounts = {"/nnjit/": REPO / "web_runtime", "/pages/": REPO / "bench" / "pages"}
    ort = REPO / "node_modules" / "onnxruntime-web" / "dist"
    if ort.is_dir():
        mounts["/ort/"] = ort
    for prefix, package in (("/tfjs-core/", "tfjs-core"), ("/tfjs-wasm/", "tfjs-backend-wasm")):
        tf = REPO / "node_modules" / "@tensorflow" / package / "dist"   # the tfjs-wasm peer (bench/pages/tfjs_peer.js)
        if tf.is_dir():
            mounts[prefix] = tf
    tok = REPO / "node_modules" / "@huggingface" / "tokenizers" / "dist"
    if tok.is_dir():  # web_runtime/tokenizer.js imports it by its bare name; pages map that here
        mounts["/vendor/tokenizers/"] = tok
    return mounts


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: "_Server"
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME}

    def translate_path(self, path: str) -> str:
        # Unmatched or escaping paths map to a name that cannot exist, so the base class answers 404.
        missing = os.devnull + "/missing"
        path = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        root, rest = self.server.owner.resolve_mount(path)
        if root is None:
            return missing
        rest = posixpath.normpath("/" + rest).lstrip("/")
        target = (root / rest).resolve()
        if target != root and root not in target.parents:
            return missing
        return str(target)

    def list_directory(self, path):
        self.send_error(404, "directory listing is disabled")
        return None

    def end_headers(self) -> None:
        for name, value in ISOLATION_HEADERS.items():
            self.send_header(name, value)
        # Bundles are rewritten in place between runs (and tests tamper with them): never cache.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: "StaticServer"

    def handle_error(self, request, client_address) -> None:
        # A browser closing a connection mid-response is routine; anything else is a bug worth seeing.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StaticServer:
    """Serve mounted directories; use as a context manager (starts a thread) or call serve_forever()."""

    def __init__(self, mounts: dict[str, str | Path] | None = None, host: str = "127.0.0.1", port: int = 0):
        self._mounts: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._httpd = _Server((host, port), _Handler)
        self._httpd.owner = self
        for prefix, directory in (mounts if mounts is not None else default_mounts()).items():
            self.mount(prefix, directory)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.origin + "/" + path.lstrip("/")

    def mount(self, prefix: str, directory: str | Path) -> str:
        """Serve `directory` under `prefix` ("/bundle/"); returns the prefix's URL."""
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ValueError(f"mount prefix must start and end with '/': {prefix!r}")
        root = Path(directory).resolve()
        if not root.is_dir():
            raise NotADirectoryError(f"not a directory: {directory}")
        with self._lock:
            self._mounts[prefix] = root
        return self.url(prefix)

    def has_mount(self, prefix: str) -> bool:
        with self._lock:
            return prefix in self._mounts

    def unmount(self, prefix: str) -> None:
        with self._lock:
            self._mounts.pop(prefix, None)

    def resolve_mount(self, path: str) -> tuple[Path | None, str]:
        with self._lock:
            # The longest prefix wins, so "/" can hold a site while "/nnjit/" still serves the runtime.
            for prefix in sorted(self._mounts, key=len, reverse=True):
                if path.startswith(prefix) or path + "/" == prefix:
                    return self._mounts[prefix], path[len(prefix):]
        return None, ""

    def start(self) -> "StaticServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="nnjit-static", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> "StaticServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
