"""The C program's auto-selection rules for step counts, ranges and step sizes.

Divergence and dispersion share one rule (C: hdiv, vdiv and disp blocks), detector thickness
and phi each have their own.  All angles in radians, sizes in metres.
"""

from __future__ import annotations

import math


def grid_rule(steps: int, rng: float, step: float) -> tuple[int, float, float]:
    """(steps, range, step) for divergence or dispersion, then C's sanity check.

    Count only: range = 1 and step = range/steps (an asymmetric grid, quirk D18); range only:
    step = range, 2 steps; range and count: step = range/(steps-1).
    """
    if steps <= 0:
        if rng < 0.0:
            if step <= 0.0:
                steps, rng, step = 1, 0.0, 0.0
            else:
                rng, steps = step, 2
        elif step <= 0.0:
            step, steps = rng, 2
        else:
            steps = math.ceil(rng / step)
    elif rng < 0.0:
        if step <= 0.0:
            rng = 1.0
            step = rng / steps
        else:
            rng, steps = step, 2
    elif step <= 0.0:
        steps = max(steps, 2)
        step = rng / (steps - 1)
    if rng <= 0.0 or step <= 0.0 or steps <= 0:
        steps, rng, step = 1, 0.0, 0.0
    return steps, rng, step


def thickness_rule(steps: int, thick: float, step: float) -> tuple[int, float, float]:
    """(layers, thickness, layer step): thickness only gives 2 layers of thick/2 (quirk D17)."""
    if steps <= 0:
        if thick < 0.0:
            if step <= 0.0:
                steps, thick, step = 1, 0.0, 0.0
            else:
                thick, steps = step, 2
        elif step <= 0.0:
            steps = 2
            step = thick / steps
        else:
            steps = math.ceil(thick / step)
    elif thick < 0.0:
        if step <= 0.0:
            thick = 0.5e-6
            step = thick / steps
        else:
            thick, steps = step, 2
    elif step <= 0.0:
        steps = max(steps, 2)
        step = thick / (steps - 1)
    if thick <= 0.0 or step <= 0.0 or steps <= 0:
        steps, thick, step = 1, 0.0, 0.0
    return steps, thick, step


def phi_rule(steps: int, osc: float, step: float) -> tuple[int, float, float]:
    """(phisteps, osc, phistep): osc only gives 2 steps of osc/2; steps and osc give osc/steps."""
    if steps < 0:
        if osc < 0.0:
            if step <= 0.0:
                return 1, 0.0, 0.0
            return 2, step, step
        if step <= 0.0:
            return 2, osc, osc / 2.0
        return math.ceil(osc / step), osc, step
    steps = max(steps, 1)
    if osc < 0.0:
        if step <= 0.0:
            osc = math.radians(1.0)
            return steps, osc, osc / steps
        return 2, step, step
    if step < 0.0:
        step = osc / steps
    return steps, osc, step


def mosaic_rule(domains: int, spread: float) -> tuple[int, float, str | None]:
    """(domains, spread, warning line): spread > 0 without a count gives 10 domains."""
    if domains <= 0:
        if spread < 0.0:
            return 1, 0.0, None
        if spread == 0.0:
            return 1, spread, None
        return 10, spread, "WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains"
    if spread < 0.0:
        return 1, 0.0, "WARNING: no mosaic spread specified.  setting mosaic_domains = 1"
    if spread == 0.0:
        return 1, spread, "WARNING: zero mosaic spread specified.  setting mosaic_domains = 1"
    return domains, spread, None
