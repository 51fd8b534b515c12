"""ONNX node conformance: onnx's own node test cases, compiled and run on wasm and webgpu.

`python -m nnjit.bench.conformance [--write-docs] [--limit N] [--webgpu all|passed|none]`

1. The onnx wheel ships the node test *definitions* (onnx/backend/test/case/node) but not their
   data; `generate()` regenerates them once with onnx's own writer (cmd_tools.generate_data fed
   with the node cases) into a cache outside git: $NNJIT_CACHE/onnx-node-tests/<onnx version>
   (default ~/.cache/nnjit/onnx-node-tests/<onnx version>), plus an index.json {test: op, kind, opset}.
2. Each test (model.onnx + test_data_set_0/{input,output}_*.pb) is compiled for both backends,
   run natively on wasm (NativeSession, wasmtime) and on webgpu (GPUSession, wgpu), and compared
   with the expected outputs at ONNX's tolerances (rtol 1e-3, atol 1e-7, NaN positions equal,
   same dtype and shape).
3. Per backend a test ends as: pass, fail (wrong values), error (a named NnjitError at run time),
   unsupported (compile raised a named NnjitError: an op, op variant or dtype the compiler does
   not handle), crash (any other exception: a compiler/runtime bug) or timeout. By default webgpu
   runs every test (the whole suite takes well under a minute on 2 cores with lavapipe); with
   --webgpu passed only the tests whose wasm run passed (the others "skipped", counted as not passed).
Tests run in worker processes, one test at a time each, with a per-test time limit: a hung test
is killed, its worker replaced, the suite goes on.

Results: <cache>/results.json and, with --write-docs, docs/ops.json + docs/ops.md (`make conformance`).
"""
from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from multiprocessing.connection import wait
from pathlib import Path

from filelock import FileLock

RTOL, ATOL = 1e-3, 1e-7
REPO = Path(__file__).resolve().parent.parent
DOCS_JSON, DOCS_MD = REPO / "docs" / "ops.json", REPO / "docs" / "ops.md"
COMMAND = "make conformance"
STATUSES = ("pass", "fail", "error", "unsupported", "crash", "timeout", "skipped")


def cache_dir() -> Path:
    import onnx
    root = Path(os.environ["NNJIT_CACHE"]) if os.environ.get("NNJIT_CACHE") else Path.home() / ".cache" / "nnjit"
    return root / "onnx-node-tests" / onnx.__version__


def results_path() -> Path:
    return cache_dir() / "results.json"


# ---------------------------------------------------------------- test data

def generate(force: bool = False) -> Path:
    """Write onnx's node tests (models + data) into the cache once; return the cache directory."""
    root = cache_dir()
    if (root / "index.json").is_file() and not force:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    # Parallel test workers share the cache: one writes it, the others wait and read it.
    with FileLock(str(root) + ".lock"):
        if (root / "index.json").is_file() and not force:
            return root
        return _write_cases(root)


def _write_cases(root: Path) -> Path:
    import types

    import numpy as np
    import onnx.backend.test.case.node as node_cases
    from onnx.backend.test import cmd_tools

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gen-", dir=root.parent))
    with np.errstate(all="ignore"):
        cases = list(node_cases.collect_testcases())
    cmd_tools.model_test = types.SimpleNamespace(collect_testcases=lambda: cases)  # onnx's writer, node cases
    cmd_tools.generate_data(argparse.Namespace(output=str(tmp)))
    single = {c.name: c.model.graph.node[0].op_type for c in cases if len(c.model.graph.node) == 1}
    index = {}
    for c in cases:
        opset = next((o.version for o in c.model.opset_import if o.domain in ("", "ai.onnx")), None)
        base = re.sub(r"_expanded(_ver\d+)?$", "", c.name)
        if c.name in single and base == c.name:
            index[c.name] = {"op": single[c.name], "kind": "node", "opset": opset}
        else:
            index[c.name] = {"op": single.get(base, "?"), "kind": "expanded", "opset": opset}
    (tmp / "node" / "index.json").write_text(json.dumps(index, indent=0, sort_keys=True))
    root.parent.mkdir(parents=True, exist_ok=True)
    if root.exists():
        shutil.rmtree(root)
    (tmp / "node").rename(root)
    shutil.rmtree(tmp, ignore_errors=True)
    return root


def load_index() -> dict:
    return json.loads((generate() / "index.json").read_text())


# ---------------------------------------------------------------- one test

def _read_pb(path: Path, tp=None):
    """A test's input or output file: a TensorProto, or — for a sequence or optional value (`tp`, its
    declared type) — a SequenceProto (a list of arrays) or OptionalProto (None or its value)."""
    import onnx
    from onnx import numpy_helper
    kind = tp.WhichOneof("value") if tp is not None else "tensor_type"
    proto = {"sequence_type": onnx.SequenceProto, "optional_type": onnx.OptionalProto}.get(kind, onnx.TensorProto)()
    proto.ParseFromString(path.read_bytes())
    if kind == "sequence_type":
        return numpy_helper.to_list(proto)
    if kind == "optional_type":
        return numpy_helper.to_optional(proto)
    return numpy_helper.to_array(proto)


def compare(expected, actual) -> str | None:
    """None when equal at ONNX's tolerances, else a one-line reason. Sequences (lists) and optionals
    (None or a value) are compared element by element."""
    import numpy as np
    if expected is None or actual is None:
        return None if expected is None and actual is None else f"{'None' if actual is None else 'a value'} where the test has " \
            f"{'None' if expected is None else 'a value'}"
    if isinstance(expected, list) or isinstance(actual, list):
        if not (isinstance(expected, list) and isinstance(actual, list)) or len(expected) != len(actual):
            return f"a sequence of {len(actual) if isinstance(actual, list) else 'no'} items, expected {len(expected) if isinstance(expected, list) else 'a tensor'}"
        for i, (e, a) in enumerate(zip(expected, actual)):
            why = compare(e, a)
            if why:
                return f"[{i}]: {why}"
        return None
    if actual.shape != expected.shape:
        return f"shape {list(actual.shape)} != expected {list(expected.shape)}"
    if actual.dtype != expected.dtype:
        return f"dtype {actual.dtype} != expected {expected.dtype}"
    if expected.dtype.kind == "V" and expected.dtype.itemsize <= 2:
        # ml_dtypes' floats (bfloat16, float8, float4): compared as the float32 values they hold
        try:
            expected, actual = expected.astype(np.float32), actual.astype(np.float32)
        except (TypeError, ValueError):
            pass
    if expected.dtype.kind in "fc":
        nan_e, nan_a = np.isnan(expected), np.isnan(actual)
        if (nan_e != nan_a).any():
            return f"NaN at {int((nan_e != nan_a).sum())} positions differ"
        e, a = expected[~nan_e], actual[~nan_a]
        bad = ~np.isclose(a, e, rtol=RTOL, atol=ATOL, equal_nan=True)
        if bad.any():
            err = np.abs(a.astype(np.float64) - e)[bad]
            return f"{int(bad.sum())}/{e.size} values off (max abs err {float(err.max()):.3g})"
        return None
    if not np.array_equal(expected, actual):
        return f"{int((expected != actual).sum())}/{expected.size} values differ"
    return None


def _one_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    msg = re.sub(r"\S*/model\.onnx: ", "", msg).split("; supported ops:")[0]
    return f"{type(e).__name__}: {msg}"[:200]


def _run_backend(bundle: Path, backend: str, feeds: dict, expected: dict) -> dict:
    from nnjit.compiler.errors import NnjitError
    if backend == "webgpu":
        from nnjit.compiler.bundle import load_bundle
        from nnjit.compiler.gpu_runtime import webgpu_gap
        gap = webgpu_gap(load_bundle(bundle)[0])
        if gap:  # a dtype WGSL lacks: compiled for wasm only, by design
            return {"status": "unsupported", "reason": f"UnsupportedOpError: {gap}"}
    try:
        if backend == "wasm":
            from nnjit.compiler.native_runtime import NativeSession
            out = NativeSession(bundle).run(feeds)
        else:
            from nnjit.compiler.gpu_runtime import GPUSession
            out = GPUSession(bundle).run(feeds)
    except NnjitError as e:
        return {"status": "error", "reason": _one_line(e)}
    except Exception as e:  # noqa: BLE001 - a crash is a finding, reported, not raised
        return {"status": "crash", "reason": _one_line(e)}
    for name, want in expected.items():
        if name not in out:
            return {"status": "fail", "reason": f"output {name!r} missing"}
        why = compare(want, out[name])
        if why:
            return {"status": "fail", "reason": f"{name}: {why}"}
    return {"status": "pass"}


def _dynamic_inputs(model) -> set[str]:
    return {i.name for i in model.graph.input
            if i.type.HasField("tensor_type") and any(not d.HasField("dim_value") or d.dim_value <= 0
                                                      for d in i.type.tensor_type.shape.dim)}


MAX_BINDS = 5  # the most inputs one test may freeze (Slice has five)


def compile_bound(model_path: Path, bundle: Path, feeds: dict, dynamic: set[str]) -> dict:
    """Compile, binding dynamic dims to the test data's shapes, and freezing to the test data exactly the
    graph inputs that the compiler reports (NnjitError.needs_constant) as having to be constants.
    Returns the inputs bound; raises the compiler's error when binding cannot help."""
    from nnjit.compiler.errors import NnjitError
    from nnjit.compiler.pipeline import compile_model
    bind: dict = {}
    while True:
        shapes = {n: list(feeds[n].shape) for n in dynamic if n in feeds and n not in bind}
        try:
            compile_model(model_path, bundle, shapes=shapes, backends=("wasm", "webgpu"), bind=bind)
            return bind
        except NnjitError as e:
            name = e.needs_constant
            if name not in feeds or name in bind or len(bind) >= MAX_BINDS:
                raise
            bind[name] = feeds[name]


def run_test(test_dir: str | Path, backends=("wasm", "webgpu"), webgpu_if_wasm_passed: bool = True) -> dict:
    """Compile and run one node test; {backend: {status, reason?}} plus compile_s and, when inputs had to be
    frozen at compile time, bound (their names)."""
    import onnx

    from nnjit.compiler.errors import NnjitError
    test_dir = Path(test_dir)
    res: dict = {}
    model = onnx.load(str(test_dir / "model.onnx"), load_external_data=False)
    data = test_dir / "test_data_set_0"
    inputs = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    with tempfile.TemporaryDirectory(prefix="nnjit-conf-") as tmp:
        bundle = Path(tmp) / "b"
        t0 = time.perf_counter()
        try:
            types = {i.name: i.type for i in model.graph.input}
            feeds = {n: _read_pb(data / f"input_{k}.pb", types[n]) for k, n in enumerate(inputs)}
            expected = {o.name: _read_pb(data / f"output_{k}.pb", o.type) for k, o in enumerate(model.graph.output)}
        except Exception as e:  # noqa: BLE001 - optional/sequence data the tensor reader cannot load
            r = {"status": "unsupported", "reason": "test data: " + _one_line(e)}
            return {b: dict(r) for b in backends}
        try:
            bound = compile_bound(test_dir / "model.onnx", bundle, feeds, _dynamic_inputs(model))
        except NnjitError as e:
            r = {"status": "unsupported", "reason": _one_line(e)}
            return {b: dict(r) for b in backends}
        except Exception as e:  # noqa: BLE001
            r = {"status": "crash", "reason": "compile: " + _one_line(e),
                 "trace": traceback.format_exc(limit=-3)[-600:]}
            return {b: dict(r) for b in backends}
        res["compile_s"] = round(time.perf_counter() - t0, 3)
        if bound:
            res["bound"] = sorted(bound)
        feeds = {n: v for n, v in feeds.items() if n not in bound}
        for b in backends:
            if b == "webgpu" and webgpu_if_wasm_passed and res.get("wasm", {}).get("status") != "pass":
                res[b] = {"status": "skipped", "reason": "wasm did not pass"}
                continue
            res[b] = _run_backend(bundle, b, feeds, expected)
    return res


# ---------------------------------------------------------------- the pool

def _worker(conn, backends, gpu_gate):
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    while True:
        try:
            name, path = conn.recv()
        except EOFError:
            return
        if name is None:
            return
        try:
            r = run_test(path, backends, gpu_gate)
        except BaseException as e:  # noqa: BLE001
            r = {b: {"status": "crash", "reason": _one_line(e)} for b in backends}
        conn.send((name, r))


def run_suite(names: list[str], jobs: int = 2, timeout_s: float = 60.0, backends=("wasm", "webgpu"),
              webgpu_if_wasm_passed: bool = True, progress=None) -> dict[str, dict]:
    """Run tests in `jobs` worker processes; a test over timeout_s is recorded as timeout and its worker replaced."""
    root = generate()
    # spawn, not fork: a forked child inherits the parent's threads' locks and an open Vulkan device
    # (wgpu-py keeps one per process), and under pytest with a browser driver running it deadlocked.
    ctx = mp.get_context("spawn")
    todo = list(names)
    results: dict[str, dict] = {}
    workers: list[dict] = []

    def spawn():
        a, b = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(b, tuple(backends), webgpu_if_wasm_passed), daemon=True)
        p.start()
        b.close()
        return {"p": p, "conn": a, "task": None, "t0": 0.0}

    def feed(w):
        if todo:
            name = todo.pop(0)
            w["task"], w["t0"] = name, time.monotonic()
            w["conn"].send((name, str(root / name)))
        else:
            w["task"] = None

    for _ in range(max(1, min(jobs, len(todo)))):
        w = spawn()
        workers.append(w)
        feed(w)
    while any(w["task"] for w in workers):
        busy = [w for w in workers if w["task"]]
        ready = wait([w["conn"] for w in busy], timeout=1.0)
        for w in busy:
            if w["conn"] in ready:
                try:
                    name, r = w["conn"].recv()
                except EOFError:  # the worker died (segfault, abort): a crash
                    name = w["task"]
                    r = {b: {"status": "crash", "reason": f"worker died (exit {w['p'].exitcode})"} for b in backends}
                    w["p"].join(1)
                    w.update(spawn())
                results[name] = r
                if progress:
                    progress(name, r, len(results), len(names))
                feed(w)
            elif time.monotonic() - w["t0"] > timeout_s:
                name = w["task"]
                w["p"].kill()
                w["p"].join(5)
                results[name] = {b: {"status": "timeout", "reason": f"over {timeout_s:.0f} s"} for b in backends}
                if progress:
                    progress(name, results[name], len(results), len(names))
                w.update(spawn())
                feed(w)
    for w in workers:
        try:
            w["conn"].send((None, None))
        except OSError:
            pass
        w["p"].join(5)
    return results


# ---------------------------------------------------------------- summary

def _latest_since(op: str) -> int | None:
    import onnx
    try:
        return onnx.defs.get_schema(op, onnx.defs.onnx_opset_version()).since_version
    except Exception:  # noqa: BLE001
        return None


def _suffix(test: str, op: str) -> str:
    """test_reduce_mean_keepdims_example → keepdims_example (the op's own prefix dropped)."""
    s = test[5:] if test.startswith("test_") else test
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()
    for p in (snake + "_", op.lower() + "_"):
        if s.startswith(p):
            return s[len(p):]
    return s


def summarize(index: dict, results: dict) -> list[dict]:
    """One row per op the compiler claims (supported_ops) plus every op of the suite that it does not."""
    from nnjit.compiler.lower import supported_ops
    claimed = set(supported_ops())
    by_op = defaultdict(list)
    for name, meta in index.items():
        if meta["kind"] == "node" and name in results:
            by_op[meta["op"]].append(name)
    rows = []
    for op in sorted(claimed | set(by_op)):
        tests = sorted(by_op.get(op, []))
        row = {"op": op, "wasm": op in claimed, "webgpu": op in claimed, "total": len(tests)}
        for b in ("wasm", "webgpu"):
            row[f"passed_{b}"] = sum(results[t][b]["status"] == "pass" for t in tests)
        row["passed"] = min(row["passed_wasm"], row["passed_webgpu"])
        row["bound"] = sum(bool(results[t].get("bound")) for t in tests)
        ok = [index[t]["opset"] for t in tests if all(results[t][b]["status"] == "pass" for b in ("wasm", "webgpu"))]
        row["opsets_passed"] = sorted(set(ok))
        row["opset_min"], row["opset_max"] = (min(ok), max(ok)) if ok else (None, None)
        row["latest_since"] = _latest_since(op)
        gaps = []
        for t in tests:
            sts = {b: results[t][b]["status"] for b in ("wasm", "webgpu")}
            if sts["wasm"] == "pass" and sts["webgpu"] == "pass":
                continue
            if op not in claimed and sts["wasm"] == "unsupported":
                continue
            label = sts["wasm"] if sts["wasm"] != "pass" else "webgpu " + sts["webgpu"]
            gaps.append(f"{_suffix(t, op)} ({label})")
        row["gaps"] = "; ".join(gaps)
        rows.append(row)
    return rows


def totals(index: dict, results: dict) -> dict:
    out = {}
    for kind in ("node", "expanded"):
        names = [n for n in results if index[n]["kind"] == kind]
        out[kind] = {"tests": len(names)}
        for b in ("wasm", "webgpu"):
            c = defaultdict(int)
            for n in names:
                c[results[n][b]["status"]] += 1
            out[kind][b] = {s: c[s] for s in STATUSES if c[s]}
    return out


def write_results(index, results, meta, docs: bool) -> dict:
    doc = {"meta": meta, "totals": totals(index, results), "ops": summarize(index, results),
           "tests": {n: {"op": index[n]["op"], "kind": index[n]["kind"], "opset": index[n]["opset"],
                         **({"bound": results[n]["bound"]} if results[n].get("bound") else {}),
                         **{b: {k: v for k, v in results[n][b].items() if k in ("status", "reason")}
                            for b in ("wasm", "webgpu")}}
                     for n in sorted(results)}}
    results_path().write_text(json.dumps(doc, indent=1))
    if docs:
        slim = dict(doc)
        # The repo copy keeps per-test detail only for non-passing tests of claimed ops, and for crashes.
        from nnjit.compiler.lower import supported_ops
        claimed = set(supported_ops())
        slim["tests"] = {n: t for n, t in doc["tests"].items()
                         if any(t[b]["status"] in ("crash", "timeout") for b in ("wasm", "webgpu"))
                         or (t["kind"] == "node" and t["op"] in claimed
                             and not all(t[b]["status"] == "pass" for b in ("wasm", "webgpu")))}
        DOCS_JSON.write_text(json.dumps(slim, indent=1) + "\n")
        DOCS_MD.write_text(markdown(slim))
    return doc


def load_results() -> dict | None:
    """The latest results: the cache's results.json, else the repo's docs/ops.json."""
    for p in (results_path(), DOCS_JSON):
        if p.is_file():
            return json.loads(p.read_text())
    return None


def markdown(doc: dict) -> str:
    m, t = doc["meta"], doc["totals"]
    claimed = [r for r in doc["ops"] if r["wasm"]]
    lines = [
        "# ONNX op conformance", "",
        f"Generated by `{COMMAND}` on {m['date']} (onnx {m['onnx']}, {m['tests']} node tests, "
        f"{m['seconds']:.0f} s, {m['jobs']} workers). Do not edit by hand.", "",
        "Each of onnx's node tests (regenerated from the onnx wheel's case definitions) is compiled and run "
        "natively on wasm (wasmtime) and webgpu (wgpu-py; here lavapipe), compared at ONNX's tolerances "
        f"(rtol {RTOL:g}, atol {ATOL:g}, NaN positions equal). "
        + ("webgpu runs only the tests whose wasm run passed. " if m.get("webgpu") == "passed" else "")
        + "`nnjit ops [--json]` prints this table from the latest results.", "",
        "A test whose inputs decide output shapes (Slice starts, reduction axes, Reshape shape, ...) runs "
        "with those inputs bound at compile time (`nnjit compile --bind NAME=...`: this compiler "
        "specialises shapes ahead of time), exactly the ones the compiler reports as needing a constant; "
        "dynamic input dims are bound to the test data's shapes (`--shape`). The column *bound at compile "
        "time* counts an op's tests that ran so.", "",
        "## Ops the compiler claims", "",
        "| op | wasm passed/total | webgpu passed/total | bound at compile time | opsets passing | latest schema | known gaps |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in claimed:
        ops = ",".join(map(str, r["opsets_passed"])) or "-"
        lines.append(f"| {r['op']} | {r['passed_wasm']}/{r['total']} | {r['passed_webgpu']}/{r['total']} | "
                     f"{r.get('bound') or '-'} | {ops} | "
                     f"{r['latest_since'] or '-'} | {r['gaps'].replace('|', '/') or '-'} |")
    cw = sum(r["passed_wasm"] for r in claimed)
    cg = sum(r["passed_webgpu"] for r in claimed)
    ct = sum(r["total"] for r in claimed)
    lines += ["", f"Claimed ops: {len(claimed)}; their node tests: wasm {cw}/{ct} passed, webgpu {cg}/{ct} passed.", "",
              "## Totals", "", "| tests | count | " + " | ".join(f"wasm {s}" for s in STATUSES) + " | "
              + " | ".join(f"webgpu {s}" for s in STATUSES) + " |", "|---" * (2 + 2 * len(STATUSES)) + "|"]
    for kind, v in t.items():
        lines.append(f"| {kind} | {v['tests']} | " + " | ".join(str(v['wasm'].get(s, 0)) for s in STATUSES) + " | "
                     + " | ".join(str(v['webgpu'].get(s, 0)) for s in STATUSES) + " |")
    lines += ["", "`node`: single-node tests (the per-op table counts these); `expanded`: the function-body "
              "expansions of ops defined as functions (many ops each).", ""]
    crashes = [(n, x) for n, x in doc["tests"].items() if "crash" in (x["wasm"]["status"], x["webgpu"]["status"])
               or "timeout" in (x["wasm"]["status"], x["webgpu"]["status"])]
    lines += ["## Crashes and timeouts (bugs)", ""]
    lines += [f"- `{n}`: {x['wasm'].get('reason') or x['webgpu'].get('reason')}" for n, x in crashes] or ["None."]
    unclaimed = [r["op"] for r in doc["ops"] if not r["wasm"]]
    lines += ["", f"## Ops with node tests that the compiler does not claim ({len(unclaimed)})", "",
              "Each of their tests must fail at compile time with UnsupportedOpError (counted as unsupported).", "",
              ", ".join(unclaimed), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------- command line

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nnjit.bench.conformance", description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--timeout", type=float, default=60.0, help="per-test seconds")
    ap.add_argument("--webgpu", choices=("all", "passed", "none"), default="all",
                    help="webgpu for every test (default), only tests whose wasm run passed (faster), or none")
    ap.add_argument("--kind", choices=("node", "all"), default="all", help="single-node tests only, or also expanded")
    ap.add_argument("--limit", type=int, help="a seeded random sample of N tests (for a quick look)")
    ap.add_argument("--match", help="only tests whose name contains this")
    ap.add_argument("--write-docs", action="store_true", help="also write docs/ops.json and docs/ops.md")
    ap.add_argument("--regenerate", action="store_true", help="regenerate the test data")
    a = ap.parse_args(argv)
    import onnx
    t0 = time.perf_counter()
    generate(force=a.regenerate)
    index = load_index()
    names = sorted(n for n, m in index.items() if a.kind == "all" or m["kind"] == "node")
    if a.match:
        names = [n for n in names if a.match in n]
    if a.limit:
        names = sorted(random.Random(0).sample(names, min(a.limit, len(names))))
    backends = ("wasm", "webgpu") if a.webgpu != "none" else ("wasm",)

    def progress(name, r, done, total):
        bad = [f"{b}={r[b]['status']}" for b in backends if r[b]["status"] not in ("pass", "unsupported", "skipped")]
        if bad or done % 100 == 0:
            print(f"[{done}/{total}] {name} {' '.join(bad)} {r.get('wasm', {}).get('reason', '')[:100]}",
                  file=sys.stderr, flush=True)

    results = run_suite(names, a.jobs, a.timeout, backends, a.webgpu == "passed", progress)
    if "webgpu" not in backends:
        for r in results.values():
            r["webgpu"] = {"status": "skipped", "reason": "--webgpu none"}
    meta = {"command": COMMAND, "date": datetime.date.today().isoformat(), "onnx": onnx.__version__,
            "tests": len(results), "jobs": a.jobs, "webgpu": a.webgpu, "seconds": round(time.perf_counter() - t0, 1)}
    doc = write_results(index, results, meta, a.write_docs and not a.limit and not a.match)
    for kind, v in doc["totals"].items():
        print(f"{kind}: {v['tests']} tests; wasm {v['wasm']}; webgpu {v['webgpu']}")
    claimed = [r for r in doc["ops"] if r["wasm"]]
    print(f"claimed ops {len(claimed)}: wasm {sum(r['passed_wasm'] for r in claimed)}/{sum(r['total'] for r in claimed)}, "
          f"webgpu {sum(r['passed_webgpu'] for r in claimed)}/{sum(r['total'] for r in claimed)} "
          f"in {meta['seconds']} s; results: {results_path()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
