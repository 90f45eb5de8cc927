"""Fake ``nbjax batch -``: reads batch lines from stdin like the real one (nbjax.cli.batch's
parser and status line), and per ARGS line writes the fake image, or with -fake-hang sleeps, or
with -fake-segv kills itself with SIGSEGV."""

import os
import signal
import sys
import time

from _common import announce, geometry, option, pattern

from nbjax.cli.batch import STATUS_PREFIX, _redirected, parse_line

folder = os.getcwd()
for number, text in enumerate(iter(sys.stdin.readline, ""), start=1):
    line = parse_line(number, text)
    if line is None:
        continue
    if line.cd is not None:
        folder = line.cd
        continue
    os.chdir(folder)
    with _redirected(line.stdout, line.stderr):
        if "-fake-hang" in line.argv:
            time.sleep(600)
        if "-fake-segv" in line.argv:
            os.kill(os.getpid(), signal.SIGSEGV)
        announce(*geometry(line.argv))
        with open(option(line.argv, "-floatfile"), "wb") as f:
            pattern(*geometry(line.argv)).tofile(f)
        print("fake stderr line", file=sys.stderr, flush=True)
        sys.stdout.flush()
    print(f"{STATUS_PREFIX}{number}: exit 0 (0.001 s)", flush=True)
