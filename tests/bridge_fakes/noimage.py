"""Fake runner: exits 0 but writes no float image."""

import sys

from _common import announce, geometry

announce(*geometry(sys.argv[1:]))
