"""Fake runner: the pattern scaled by 1.02 plus deterministic noise (fails the thresholds)."""

import sys

from _common import render


def perturb(data):
    state = 12345
    for v in data:
        state = (1103515245 * state + 12345) % 2**31
        yield 1.02 * v + 20.0 * (state / 2**31 - 0.5)


render(sys.argv[1:], perturb)
