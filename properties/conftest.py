"""Hypothesis profiles for the property tests, chosen by the HYPOTHESIS_PROFILE environment
variable (default ``ci``):

* ``ci``: few examples (12 per test), derandomized (the same examples every run), no example
  database and no deadline, so the suite is fast and reproducible (~30 s on 2 cores).
* ``thorough``: 200 examples per test, random, no deadline, for occasional deep runs
  (~6 minutes on 2 cores).

Both skip Hypothesis' explain phase, which re-runs a failing example hundreds of times.
"""

import os

from hypothesis import HealthCheck, Phase, settings

# The explain phase re-runs a failing example hundreds of times (minutes with jit-compiled renders).
PHASES = [phase for phase in Phase if phase != Phase.explain]

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
    phases=PHASES,
)
settings.register_profile(
    "thorough",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
    phases=PHASES,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
