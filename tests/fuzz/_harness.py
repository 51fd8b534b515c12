"""Shared fuzz plumbing: hypothesis profiles, per-case timeout, outcome bookkeeping, the corpus.

NNJIT_FUZZ_EXAMPLES=N sets the cases per target (default 200, derandomized: the fast seeded subset
`pytest` runs); `make fuzz` runs 10,000 per target with random seeds and prints the summary."""
from __future__ import annotations

import json
import os
import signal
import time
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, settings

from nnjit.compiler.errors import NnjitError

CORPUS = Path(__file__).parent / "corpus"
EXAMPLES = int(os.environ.get("NNJIT_FUZZ_EXAMPLES", "200"))
FULL = "NNJIT_FUZZ_EXAMPLES" in os.environ
CASE_TIMEOUT_S = float(os.environ.get("NNJIT_FUZZ_CASE_TIMEOUT", "20"))

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not FULL, database=None,
                suppress_health_check=list(HealthCheck), print_blob=True)

# target → {"cases", "named", "ok", "crashes", "hangs", "seconds"}
STATS: dict[str, dict] = {}


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    """SIGALRM-based: interrupts Python code (a native call that never returns is not interrupted)."""
    def handler(signum, frame):
        raise Hang(f"case ran past {seconds} s")
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def expect_named(target: str, fn, allowed=(NnjitError,)):
    """Run one case: it must succeed or raise one of `allowed`; anything else (or a hang) fails it."""
    st = STATS.setdefault(target, {"cases": 0, "ok": 0, "named": 0, "crashes": 0, "hangs": 0, "seconds": 0.0})
    st["cases"] += 1
    t0 = time.perf_counter()
    try:
        with time_limit(CASE_TIMEOUT_S):
            fn()
        st["ok"] += 1
    except allowed as e:
        if not str(e).strip() or "\n" in str(e).strip():
            st["crashes"] += 1
            raise AssertionError(f"{type(e).__name__} message must be one non-empty line: {e!r}") from None
        st["named"] += 1
        return e
    except Hang:
        st["hangs"] += 1
        raise
    except BaseException:
        st["crashes"] += 1
        raise
    finally:
        st["seconds"] += time.perf_counter() - t0
    return None


def write_summary(path: str) -> None:
    Path(path).write_text(json.dumps(STATS, indent=1))
