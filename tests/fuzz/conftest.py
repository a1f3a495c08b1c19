"""Settings of the fuzz suite: a fixed seed and a bounded number of examples (``make test``: under two
minutes on two cores), or many more with ``LOC2_FUZZ_LONG=1`` (``LOC2_FUZZ_LONG=1 pytest tests/fuzz``).

Every generated case must end in a result or in a :class:`Loc2Error` whose message names the input; any
other exception is a fault of the engine (a traceback for the user) and fails the test.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("LOC2_FUZZ_LONG", "") not in ("", "0")
EXAMPLES = 2000 if LONG else 100  # per test; each test may scale it for its cost

settings.register_profile(
    "loc2-fuzz",
    derandomize=True,  # the same cases on every run and machine
    max_examples=EXAMPLES,
    deadline=None,  # a case's time is bounded by the tests themselves, not by Hypothesis' timer
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
settings.load_profile("loc2-fuzz")
