"""The one Pearson correlation (nbjax_bridge.metrics.pearson), used by the bridge, tests/golden.py,
the property tests and scripts/bench."""

import math

import numpy as np

from nbjax_bridge.metrics import pearson


def test_identical_inputs_give_exactly_one():
    rng = np.random.default_rng(1)
    for image in (rng.random((37, 53)) * 1e6, rng.standard_normal(4099), np.full(9, 3.5)):
        assert pearson(image, image.copy()) == 1.0  # exact by construction, not by rounding


def test_against_an_independent_formula():
    rng = np.random.default_rng(2)
    a = rng.random(1000)
    b = 0.3 * a + rng.random(1000)
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    expected = cov / (a.std() * b.std())
    assert math.isclose(pearson(a, b), expected, rel_tol=1e-12)
    assert math.isclose(pearson(a, -2 * a + 1), -1.0, rel_tol=1e-12)


def test_undefined_cases_are_nan():
    assert math.isnan(pearson(np.ones(4), np.arange(4.0)))
    assert math.isnan(pearson(np.array([]), np.array([])))
    assert math.isnan(pearson(np.ones(4), np.ones(5)))
