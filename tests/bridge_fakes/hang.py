"""Fake runner: prints its geometry, then sleeps forever (a child sleeps too)."""

import subprocess
import sys
import time

from _common import announce, geometry

announce(*geometry(sys.argv[1:]))
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
while True:
    time.sleep(3600)
