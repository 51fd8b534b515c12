"""The web runtime's MoE committee (web_runtime/moe.js, moe_swap.js) under node on the moe-digits bundle:
each policy and committee size reproduces the native runtime's outputs bit for bit (plain SIMD kernels
in both), its compacted memory size and its swap count (tests/js/moe_committee.mjs)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path


from nnjit.bench import zoo, zoo_moe
from nnjit.compiler.moe_plan import plan as make_plan
from nnjit.compiler.native_runtime import NativeSession
from nnjit.compiler.pipeline import compile_model

ROOT = Path(__file__).resolve().parent.parent


def test_web_runtime_committee_matches_native(tmp_path):
    assert shutil.which("node"), "node is missing: `make setup` installs it"
    bundle = tmp_path / "b"
    compile_model(zoo.cached("moe-digits"), bundle, {"input": [7, 64]}, backends=("wasm",))
    x_tr, _, x_te, _ = zoo_moe.digits_flat()
    plan = make_plan(bundle, {"input": x_tr[:140]})
    inputs = [x_te[i * 7:(i + 1) * 7] for i in range(5)]
    cases = [("plain", None), ("full committee, swap", {"residentExperts": 8, "policy": "swap"}),
             ("swap 2 of 8", {"residentExperts": 2, "policy": "swap", "plan": plan}),
             ("substitute 4 of 8", {"residentExperts": 4, "policy": "substitute", "plan": plan}),
             ("skip 3 of 8 by budget", {"budgetBytes": 3 * 16768 + 100, "policy": "skip", "plan": plan}),
             ("substitute 2 of 8, no plan", {"residentExperts": 2, "policy": "substitute"})]
    out = []
    for name, moe in cases:
        s = NativeSession(bundle, relaxed=False, moe=moe)
        outs = [s.run({"input": x})["logits"].ravel().tolist() for x in inputs]
        out.append({"name": name, "moe": moe, "outputs": outs, "memory_bytes": s.manifest["memory"]["total_bytes"],
                    "swaps": s.moe.swaps if s.moe else 0})
    assert out[2]["swaps"] > 0 and out[2]["outputs"] == out[0]["outputs"]
    assert out[3]["outputs"] != out[0]["outputs"]
    node = next(st["node"] for st in json.loads((bundle / "manifest.json").read_text())["steps"] if st["family"] == "moe")
    (tmp_path / "expected.json").write_text(json.dumps({"inputs": [x.ravel().tolist() for x in inputs], "cases": out,
                                                        "node": node}))
    r = subprocess.run(["node", "--test", str(ROOT / "tests" / "js" / "moe_committee.mjs")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env={**os.environ, "NNJIT_TEST_MOE": str(tmp_path)})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "# fail 0" in r.stdout and "# pass 7" in r.stdout, r.stdout[-2000:]
