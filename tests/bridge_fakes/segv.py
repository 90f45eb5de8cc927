"""Fake runner: prints its geometry, then kills itself with SIGSEGV (like C on a 5-column HKL)."""

import os
import signal
import sys

from _common import announce, geometry

announce(*geometry(sys.argv[1:]))
print("about to crash", file=sys.stderr, flush=True)
os.kill(os.getpid(), signal.SIGSEGV)
