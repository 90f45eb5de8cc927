"""setup.sampling.auto_steps, the one rule behind grid_rule (divergence, dispersion) and
thickness_rule (sensor layers), against a literal transcription of the C program's blocks for
every combination of given / not given / zero / negative step count, range and step.  Exact
comparisons: both sides do the same IEEE operations in the same order."""

import itertools
import math

from nbjax.setup.sampling import grid_rule, thickness_rule


def c_block(steps, rng, step, block):
    """nanoBragg.c's auto-selection block for ``block`` = "div" (hdiv, vdiv; disp is the same
    text) or "thick" (detector_thicksteps/_thick/_thickstep), then its sanity check, written
    branch for branch as the C source; the two lines where the C blocks differ are marked."""
    if steps <= 0:
        if rng < 0.0:
            if step <= 0.0:
                steps, rng, step = 1, 0.0, 0.0
            else:
                rng = step
                steps = 2
        else:
            if step <= 0.0:
                if block == "div":
                    step = rng  # vdivstep = vdivrange; vdivsteps = 2;
                    steps = 2
                else:
                    steps = 2  # detector_thicksteps = 2; detector_thickstep = detector_thick/detector_thicksteps;
                    step = rng / steps
            else:
                steps = math.ceil(rng / step)
    else:
        if rng < 0.0:
            if step <= 0.0:
                rng = 1.0 if block == "div" else 0.5e-6  # vdivrange = 1.0; / detector_thick = 0.5e-6;
                step = rng / steps
            else:
                rng = step
                steps = 2
        else:
            if step <= 0.0:
                if steps <= 1:
                    steps = 2
                step = rng / (steps - 1)
    if rng <= 0.0 or step <= 0.0 or steps <= 0:
        steps, rng, step = 1, 0.0, 0.0
    return steps, rng, step


STEPS = (-1, 0, 1, 2, 3, 7)
RANGES = (-1.0, 0.0, 1e-6, 2.5e-4, 0.3)
STEP_SIZES = (-1.0, 0.0, 1e-7, 1e-4, 0.07)


def test_grid_rule_is_the_c_divergence_block():
    for args in itertools.product(STEPS, RANGES, STEP_SIZES):
        assert grid_rule(*args) == c_block(*args, "div"), args


def test_thickness_rule_is_the_c_thickness_block():
    for args in itertools.product(STEPS, RANGES, STEP_SIZES):
        assert thickness_rule(*args) == c_block(*args, "thick"), args


def test_the_two_rules_differ_where_c_does():
    assert grid_rule(-1, 2e-3, -1.0) == (2, 2e-3, 2e-3)  # range only: two points a range apart
    assert thickness_rule(-1, 2e-4, -1.0) == (2, 2e-4, 1e-4)  # two layers filling it
    assert grid_rule(4, -1.0, -1.0) == (4, 1.0, 0.25)  # count only
    assert thickness_rule(4, -1.0, -1.0) == (4, 0.5e-6, 0.125e-6)
