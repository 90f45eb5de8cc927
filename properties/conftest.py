"""Hypothesis profiles for the property tests, chosen by the HYPOTHESIS_PROFILE environment
variable (default ``ci``):

* ``ci``: few examples (12 per test), derandomized (the same examples every run), no example
  database and no deadline, so the suite is fast and reproducible (~2 minutes on 2 cores).
* ``thorough``: 200 examples per test, random, no deadline, for occasional deep runs.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
