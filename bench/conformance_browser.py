"""The ONNX node tests in Chromium (`make conformance-browser`): the tests compile as in
bench/conformance.py, then run through the web runtime in batches of many tests per page load
(Session.create / run / release each), on wasm and on WebGPU (SwiftShader), compared at the same
tolerances. Writes docs/ops_browser.md; prints pass/total per backend.
"""
from __future__ import annotations

import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from .conformance import REPO, _dynamic_inputs, _one_line, _read_pb, compare, compile_bound, generate, load_index

BATCH = 40


def prepare(names: list[str], root: Path, work: Path) -> dict[str, dict]:
    """Compile every test into work/NAME (bundle + inputs.bin); {name: {expected, inputs spec} or {status}}."""
    import onnx

    from nnjit.compiler.errors import NnjitError
    out = {}
    for name in names:
        test = root / name
        model = onnx.load(str(test / "model.onnx"), load_external_data=False)
        inits = {t.name for t in model.graph.initializer}
        inputs = [i.name for i in model.graph.input if i.name not in inits]
        data = test / "test_data_set_0"
        try:
            types = {i.name: i.type for i in model.graph.input}
            feeds = {n: _read_pb(data / f"input_{k}.pb", types[n]) for k, n in enumerate(inputs)}
            expected = {o.name: _read_pb(data / f"output_{k}.pb", o.type) for k, o in enumerate(model.graph.output)}
            bound = compile_bound(test / "model.onnx", work / name, feeds, _dynamic_inputs(model))
        except NnjitError as e:
            out[name] = {"status": "unsupported", "reason": _one_line(e)}
            continue
        except Exception as e:  # noqa: BLE001 - test data the reader cannot load, a compiler crash: reported
            out[name] = {"status": "unsupported", "reason": _one_line(e)}
            continue
        feeds = {n: v for n, v in feeds.items() if n not in bound}
        out[name] = {"expected": expected, "inputs": _write_feeds(work / name / "inputs.bin", feeds, model)}
    return out


def _write_feeds(path: Path, feeds: dict, model) -> list[dict]:
    """Like page_data.write_inputs; Cast-only dtypes (ml_dtypes arrays) as their memory image."""
    from nnjit.browsers.page_data import write_inputs
    from nnjit.compiler.ir import CAST_ONLY_BITS, dtype_name, to_bytes
    from nnjit.compiler.onnx_import import ONNX_DTYPES
    types = {i.name: ONNX_DTYPES.get(i.type.tensor_type.elem_type) for i in model.graph.input}
    raw = {n for n, v in feeds.items() if isinstance(v, np.ndarray) and dtype_name(v.dtype) in CAST_ONLY_BITS}
    plain = {n: v for n, v in feeds.items() if n not in raw}
    specs = write_inputs(path, plain)
    end = max((s["offset"] + s["bytes"] for s in specs if "offset" in s), default=0)
    with open(path, "r+b") as f:
        for n in raw:
            data = to_bytes(feeds[n], types[n])
            end = -(-end // 64) * 64
            f.seek(end)
            f.write(data)
            specs.append({"name": n, "dtype": types[n], "shape": list(feeds[n].shape), "offset": end, "bytes": len(data)})
            end += len(data)
    order = list(feeds)
    return sorted(specs, key=lambda s: order.index(s["name"]))


def run_batches(harness, work: Path, prepared: dict, backend: str, progress=None) -> dict[str, dict]:
    ready = [n for n, p in prepared.items() if "inputs" in p]
    results = {n: dict(p) for n, p in prepared.items() if "inputs" not in p}
    with harness.mounted(work) as url:
        for i in range(0, len(ready), BATCH):
            chunk = ready[i:i + BATCH]
            tests = [{"name": n, "bundleUrl": f"{url}{n}/", "inputsUrl": f"{url}{n}/inputs.bin",
                      "inputs": prepared[n]["inputs"]} for n in chunk]
            page = harness.browser.new_page()
            try:
                page.goto(harness.server.url("/pages/conformance.html"))
                page.evaluate("config => window.nnjitBench.start(config)", {"tests": tests, "backend": backend})
                value = page.wait_for_function("() => window.nnjitBench.result", polling=200,
                                               timeout=harness.timeout_s * 1000).json_value()
            except Exception as e:  # noqa: BLE001 - a crashed or hung page fails its batch, not the run
                for n in chunk:
                    results[n] = {"status": "crash", "reason": f"page: {_one_line(e)}"}
                continue
            finally:
                page.close()
            if not value["ok"]:
                for n in chunk:
                    results[n] = {"status": "crash", "reason": f"batch: {value['error']['message'][:200]}"}
                continue
            for r in value["value"]:
                results[r["name"]] = _judge(r, prepared[r["name"]]["expected"], backend)
            if progress:
                progress(min(i + BATCH, len(ready)), len(ready))
    return results


def _judge(r: dict, expected: dict, backend: str) -> dict:
    from nnjit.browsers.page_data import decode_outputs
    if not r["ok"]:
        e = r["error"]
        status = "unsupported" if "no webgpu kernel" in e["message"] else "error"
        return {"status": status, "reason": f"{e['name']}: {e['message'][:200]}"}
    if r["backend"] != backend:
        return {"status": "unsupported", "reason": f"ran on {r['backend']}"}
    out = decode_outputs(r["outputs"])
    for name, want in expected.items():
        if name not in out:
            return {"status": "fail", "reason": f"output {name!r} missing"}
        got = out[name]
        if isinstance(want, np.ndarray) and isinstance(got, np.ndarray):  # not a sequence / optional value
            if want.dtype == np.bool_ and got.dtype == np.uint8:
                got = got.astype(np.bool_)
            if want.dtype.kind == "V" and got.dtype.itemsize == want.dtype.itemsize:
                got = got.view(want.dtype)
        why = compare(want, got)
        if why:
            return {"status": "fail", "reason": f"{name}: {why}"}
    return {"status": "pass"}


def summarize(index: dict, results: dict[str, dict[str, dict]]) -> list[dict]:
    by_op: dict[str, dict] = {}
    for name, per in results.items():
        op = index[name]["op"]
        row = by_op.setdefault(op, {"op": op})
        for backend, r in per.items():
            c = row.setdefault(backend, {"passed": 0, "total": 0})
            c["total"] += 1
            c["passed"] += r["status"] == "pass"
    return [by_op[k] for k in sorted(by_op)]


def main(argv=None) -> int:
    from nnjit.browsers.page_runner import BrowserHarness
    from nnjit.compiler.lower import supported_ops
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ops", help="comma-separated ops (default: every op the compiler supports)")
    ap.add_argument("--limit", type=int, default=0, help="at most this many tests (a seeded sample)")
    ap.add_argument("--backends", default="wasm,webgpu")
    ap.add_argument("--out", default=str(REPO / "docs" / "ops_browser.md"))
    a = ap.parse_args(argv)
    root = generate()
    index = load_index()
    ops = set(a.ops.split(",")) if a.ops else set(supported_ops())
    names = sorted(n for n, v in index.items() if v["op"] in ops and v["kind"] == "node")
    if a.limit:
        names = sorted(np.random.default_rng(0).choice(names, min(a.limit, len(names)), replace=False).tolist())
    t0 = time.perf_counter()
    results: dict[str, dict] = {n: {} for n in names}
    with tempfile.TemporaryDirectory(prefix="nnjit-confb-") as td:
        work = Path(td)
        prepared = prepare(names, root, work)
        t_compile = time.perf_counter() - t0
        for backend in a.backends.split(","):
            with BrowserHarness(timeout_s=600, webgpu=backend == "webgpu") as h:
                res = run_batches(h, work, prepared, backend,
                                  progress=lambda d, n: print(f"\r{backend}: {d}/{n}", end="", flush=True))
                print()
                for n, r in res.items():
                    results[n][backend] = r
                version = h.browser.version
    rows = summarize(index, results)
    elapsed = time.perf_counter() - t0
    backends = a.backends.split(",")
    tot = {b: (sum(r.get(b, {}).get("passed", 0) for r in rows), sum(r.get(b, {}).get("total", 0) for r in rows))
           for b in backends}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# ONNX node tests in Chromium\n\nGenerated by `make conformance-browser` (python -m nnjit.bench.conformance_browser) "
             f"on {now}, Chromium {version}, {len(names)} single-node tests of the ops the compiler supports, "
             f"{BATCH} tests per page load, compiled in {t_compile:.0f} s, {elapsed:.0f} s in all. "
             "Compared at the same tolerances as `make conformance` (docs/ops.md, native runs).\n",
             "| op | " + " | ".join(f"{b} passed/total" for b in backends) + " |", "|---|" + "---|" * len(backends)]
    for r in rows:
        lines.append(f"| {r['op']} | " + " | ".join(f"{r.get(b, {}).get('passed', 0)}/{r.get(b, {}).get('total', 0)}"
                                                   for b in backends) + " |")
    lines.append("| **all** | " + " | ".join(f"**{tot[b][0]}/{tot[b][1]}**" for b in backends) + " |")
    fails = [(n, b, r[b]["reason"]) for n, r in results.items() for b in backends
             if r.get(b, {}).get("status") in ("fail", "error", "crash")]
    if fails:
        lines.append("\nFailures:\n")
        lines += [f"- {n} ({b}): {why}" for n, b, why in sorted(fails)]
    Path(a.out).write_text("\n".join(lines) + "\n")
    (root / "results_browser.json").write_text(json.dumps(results, indent=0, default=str))
    print("\n".join(lines[:2]))
    for b in backends:
        print(f"{b}: {tot[b][0]}/{tot[b][1]} passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
