"""Hypothesis profiles for the property tests, chosen by the HYPOTHESIS_PROFILE environment
variable (default ``ci``):

* ``ci``: few examples (12 per test), derandomized (the same examples every run), no example
  database and no deadline, so the suite is fast and reproducible (~30 s on 2 cores).
* ``thorough``: 200 examples per test, random, no deadline, for occasional deep runs
  (~6 minutes on 2 cores).

Both skip Hypothesis' explain phase, which re-runs a failing example hundreds of times.

test_parity_live.py (nbjax against the C program; skipped unless NB_C_BIN names it) runs 10
examples under ``ci``, the profile's max_examples otherwise, or $NBJAX_PARITY_EXAMPLES.
scripts/property-campaign runs the suite with ``thorough`` and reports on it.
"""

import json
import os

import jax
import pytest
from hypothesis import HealthCheck, Phase, settings

# nbjax never enables JAX's 64-bit mode itself; the test session does, for float64 parity.
jax.config.update("jax_enable_x64", True)

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


# ----------------------------------------------------------------------------------------------
# Per-test records for scripts/property-campaign: when NBJAX_PROPERTY_STATS names a file, one
# JSON line per test is appended to it (node id, outcome, seconds, failure text and Hypothesis'
# statistics text, which holds the examples tried per phase and the events).


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    path = os.environ.get("NBJAX_PROPERTY_STATS")
    if not path:
        return
    report = outcome.get_result()
    record = item.__dict__.setdefault(
        "_nbjax_record", {"nodeid": item.nodeid, "outcome": "passed", "seconds": 0.0, "longrepr": None}
    )
    record["seconds"] += report.duration
    if report.outcome != "passed" and record["outcome"] == "passed":
        record["outcome"] = report.outcome if report.when == "call" or report.outcome == "skipped" else "error"
        record["longrepr"] = str(report.longrepr)[-4000:] if report.longrepr is not None else None
    if report.when == "teardown":
        record["statistics"] = getattr(item, "hypothesis_statistics", None)
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


def pytest_collectreport(report):
    """A module skipped at import (test_parity_live.py without NB_C_BIN) is recorded too."""
    path = os.environ.get("NBJAX_PROPERTY_STATS")
    if path and report.outcome in ("skipped", "failed"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)[-4000:]
        with open(path, "a") as handle:
            handle.write(
                json.dumps(
                    {
                        "nodeid": report.nodeid,
                        "outcome": "skipped" if report.outcome == "skipped" else "error",
                        "seconds": 0.0,
                        "longrepr": reason,
                        "statistics": None,
                    }
                )
                + "\n"
            )
