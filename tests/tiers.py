"""How much of the long sweeps a run covers: `make test` a fixed sample of each, `make test-all`
(NNJIT_TEST_FULL=1) all of it. The sample rotates with the case so every position is still hit."""
import os

FULL = os.environ.get("NNJIT_TEST_FULL") == "1"


def keep(i: int, salt: int, every: int) -> bool:
    """Whether item i (of a sweep salted by `salt`) runs: always under FULL and for i = 0 (the default
    candidate), else one in `every`."""
    return FULL or i == 0 or (i + salt) % every == 0
