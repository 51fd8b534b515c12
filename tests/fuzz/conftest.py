import os

from ._harness import STATS, write_summary


def pytest_sessionfinish(session, exitstatus):
    out = os.environ.get("NNJIT_FUZZ_SUMMARY")
    if out and STATS:
        write_summary(out)
