"""`make fuzz`: every fuzz target with NNJIT_FUZZ_EXAMPLES cases (default 10,000) and random seeds,
then one summary line per target: cases, named errors, successes, crashes, hangs, time."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def main() -> int:
    n = os.environ.get("NNJIT_FUZZ_EXAMPLES", "10000")
    with tempfile.TemporaryDirectory() as d:
        summary = os.path.join(d, "summary.json")
        env = {**os.environ, "NNJIT_FUZZ_EXAMPLES": n, "NNJIT_FUZZ_SUMMARY": summary}
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/fuzz",
                            "-k", "fuzz_"] + sys.argv[1:], env=env)
        wall = time.perf_counter() - t0
        stats = json.loads(open(summary).read()) if os.path.exists(summary) else {}
    print(f"\nfuzz summary ({n} examples per test, {wall:.0f} s wall):")
    for target, s in sorted(stats.items()):
        print(f"  {target:10s} cases {s['cases']:6d}  named-errors {s['named']:6d}  ok {s['ok']:6d}  "
              f"crashes {s['crashes']}  hangs {s['hangs']}  time {s['seconds']:.0f} s")
    crashes = sum(s["crashes"] for s in stats.values())
    hangs = sum(s["hangs"] for s in stats.values())
    print(f"  total crashes {crashes}, hangs {hangs}; pytest exit {r.returncode}")
    return r.returncode or int(bool(crashes or hangs))


if __name__ == "__main__":
    sys.exit(main())
