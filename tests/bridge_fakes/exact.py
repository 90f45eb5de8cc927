"""Fake runner: the deterministic pattern, exactly (used on both sides it agrees perfectly)."""

import sys

from _common import render

render(sys.argv[1:])
