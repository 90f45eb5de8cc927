"""Fake runner: writes an image one pixel wider than asked (a shape mismatch)."""

import sys

from _common import geometry, render

f, s = geometry(sys.argv[1:])
render(sys.argv[1:], fpixels=f + 1, spixels=s)
