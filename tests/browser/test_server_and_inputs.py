"""browsers/server.py and bench/inputs.py, without a browser."""
from __future__ import annotations

import http.client
import urllib.error
import urllib.request

import numpy as np
import pytest

from nnjit.bench.inputs import check_inputs, load_inputs, random_inputs
from nnjit.browsers.server import StaticServer
from nnjit.compiler.errors import InputError


def test_server_headers_mime_and_containment(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "k.wasm").write_bytes(b"\0asm\1\0\0\0")
    (tmp_path / "site" / "m.mjs").write_text("export {}")
    (tmp_path / "secret.txt").write_text("no")
    with StaticServer({"/b/": tmp_path / "site"}) as srv:
        with urllib.request.urlopen(srv.url("/b/k.wasm")) as r:
            assert r.headers["Content-Type"] == "application/wasm"
            assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        with urllib.request.urlopen(srv.url("/b/m.mjs")) as r:
            assert r.headers["Content-Type"] == "text/javascript"
        host, port = srv.origin.removeprefix("http://").split(":")
        for path in ("/b/../secret.txt", "/b/%2e%2e/secret.txt", "/other/x", "/b/"):
            conn = http.client.HTTPConnection(host, int(port))
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 404, path
            assert resp.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
            conn.close()
        srv.unmount("/b/")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(srv.url("/b/k.wasm"))


SPECS = [
    {"name": "x", "dtype": "float32", "shape": [2, 3]},
    {"name": "ids", "dtype": "int64", "shape": [4], "int_range": [10, 20]},
    {"name": "pos", "dtype": "int32", "shape": [5]},
    {"name": "mask", "dtype": "bool", "shape": [6]},
]


def test_random_inputs_are_seeded_and_typed():
    a, b, c = random_inputs(SPECS, seed=1), random_inputs(SPECS, seed=1), random_inputs(SPECS, seed=2)
    assert {k: v.dtype for k, v in a.items()} == {"x": np.float32, "ids": np.int64, "pos": np.int32, "mask": np.bool_}
    assert a["x"].shape == (2, 3)
    assert all(np.array_equal(a[k], b[k]) for k in a) and not np.array_equal(a["x"], c["x"])
    assert a["ids"].min() >= 10 and a["ids"].max() < 20
    assert set(np.unique(random_inputs([{"name": "p", "dtype": "int32", "shape": [200]}])["p"])) == {0, 1}


def test_load_and_check_inputs(tmp_path):
    f = tmp_path / "in.npz"
    np.savez(f, x=np.ones((2, 3), np.float32), ids=np.arange(4, dtype=np.int32),
             pos=np.arange(5, dtype=np.int32), mask=np.ones(6, bool))
    checked = check_inputs(SPECS, load_inputs(f))
    assert checked["ids"].dtype == np.int64  # integer widths convert like the runtime's int64 feeds
    with pytest.raises(InputError, match="input 'x': expected dtype float32, got float64"):
        check_inputs(SPECS, {**checked, "x": np.ones((2, 3))})
    with pytest.raises(InputError, match="missing input 'mask'"):
        check_inputs(SPECS, {k: v for k, v in checked.items() if k != "mask"})
    with pytest.raises(InputError, match="no such file"):
        load_inputs(tmp_path / "none.npz")
