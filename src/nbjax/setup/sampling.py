"""The C program's auto-selection rules for step counts, ranges and step sizes.

Divergence, dispersion and detector thickness share one rule with two parameters (C writes
it out four times: hdiv, vdiv, disp and thickness blocks); phi and mosaic have their own.  All
angles in radians, sizes in metres.
"""

from __future__ import annotations

import math


def auto_steps(
    steps: int, rng: float, step: float, *, count_only_range: float, range_only_halves: bool
) -> tuple[int, float, float]:
    """(steps, range, step) from the given ones (-1 or 0 = not given), then C's sanity check.

    C writes this rule out for divergence (h and v), dispersion and detector thickness; the
    copies differ in two places only, the parameters:

    - ``count_only_range``: the range C assumes when only the count is given (grids 1.0,
      thickness 0.5e-6 m); the step is then range/steps (quirk D18: an asymmetric grid);
    - ``range_only_halves``: a range alone gives 2 steps of ``range`` (grids: two points a
      range apart) or, when True, of ``range/2`` (thickness: two layers filling it, quirk D17).

    Range and count give step = range/(steps-1) (at least 2 steps); range and step give
    ceil(range/step) steps; step alone gives range = step and 2 steps.  Finally anything with
    a range, step or count that is not positive becomes (1, 0, 0).
    """
    if steps <= 0:
        if rng < 0.0:
            if step <= 0.0:
                steps, rng, step = 1, 0.0, 0.0
            else:
                rng, steps = step, 2
        elif step <= 0.0:
            steps = 2
            step = rng / steps if range_only_halves else rng
        else:
            steps = math.ceil(rng / step)
    elif rng < 0.0:
        if step <= 0.0:
            rng = count_only_range
            step = rng / steps
        else:
            rng, steps = step, 2
    elif step <= 0.0:
        steps = max(steps, 2)
        step = rng / (steps - 1)
    if rng <= 0.0 or step <= 0.0 or steps <= 0:
        steps, rng, step = 1, 0.0, 0.0
    return steps, rng, step


def grid_rule(steps: int, rng: float, step: float) -> tuple[int, float, float]:
    """(steps, range, step) for divergence (radians) or dispersion (fraction)."""
    return auto_steps(steps, rng, step, count_only_range=1.0, range_only_halves=False)


def thickness_rule(steps: int, thick: float, step: float) -> tuple[int, float, float]:
    """(layers, thickness, layer step) of the detector sensor (metres)."""
    return auto_steps(steps, thick, step, count_only_range=0.5e-6, range_only_halves=True)


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
