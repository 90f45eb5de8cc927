"""setup.sampling.auto_steps, the one rule behind grid_rule (divergence, dispersion) and
thickness_rule (sensor layers), against literal transcriptions of the C program's blocks for
every combination of given / not given / zero / negative step count, range and step."""

import itertools
import math

from nbjax.setup.sampling import grid_rule, thickness_rule


def c_divergence_block(steps, rng, step):
    """nanoBragg.c: the hdivsteps/hdivrange/hdivstep block (vdiv and disp are the same), then the
    sanity check; written branch for branch as the C source."""
    if steps <= 0:
        if rng < 0.0:
            if step <= 0.0:
                steps, rng, step = 1, 0.0, 0.0
            else:
                rng = step
                steps = 2
        else:
            if step <= 0.0:
                step = rng
                steps = 2
            else:
                steps = math.ceil(rng / step)
    else:
        if rng < 0.0:
            if step <= 0.0:
                rng = 1.0
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


def c_thickness_block(steps, thick, step):
    """nanoBragg.c: the detector_thicksteps/detector_thick/detector_thickstep block and its
    sanity check, branch for branch."""
    if steps <= 0:
        if thick < 0.0:
            if step <= 0.0:
                steps, thick, step = 1, 0.0, 0.0
            else:
                thick = step
                steps = 2
        else:
            if step <= 0.0:
                steps = 2
                step = thick / steps
            else:
                steps = math.ceil(thick / step)
    else:
        if thick < 0.0:
            if step <= 0.0:
                thick = 0.5e-6
                step = thick / steps
            else:
                thick = step
                steps = 2
        else:
            if step <= 0.0:
                if steps <= 1:
                    steps = 2
                step = thick / (steps - 1)
    if thick <= 0.0 or step <= 0.0 or steps <= 0:
        steps, thick, step = 1, 0.0, 0.0
    return steps, thick, step


STEPS = (-1, 0, 1, 2, 3, 7)
RANGES = (-1.0, 0.0, 1e-6, 2.5e-4, 0.3)
STEP_SIZES = (-1.0, 0.0, 1e-7, 1e-4, 0.07)


def test_grid_rule_is_the_c_divergence_block():
    for args in itertools.product(STEPS, RANGES, STEP_SIZES):
        assert grid_rule(*args) == c_divergence_block(*args), args


def test_thickness_rule_is_the_c_thickness_block():
    for args in itertools.product(STEPS, RANGES, STEP_SIZES):
        assert thickness_rule(*args) == c_thickness_block(*args), args


def test_the_two_rules_differ_where_c_does():
    assert grid_rule(-1, 2e-3, -1.0) == (2, 2e-3, 2e-3)  # range only: two points a range apart
    assert thickness_rule(-1, 2e-4, -1.0) == (2, 2e-4, 1e-4)  # two layers filling it
    assert grid_rule(4, -1.0, -1.0) == (4, 1.0, 0.25)  # count only
    assert thickness_rule(4, -1.0, -1.0) == (4, 0.5e-6, 0.125e-6)
