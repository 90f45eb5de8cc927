"""Shared code of the fake nanoBragg runners used by tests/test_bridge_*.py (stdlib only).

A fake takes nanoBragg argv, reads ``-floatfile NAME`` and ``-detpixels N`` (default 64), checks
that ``-sourcefile``/``-hkl``/``-mat`` files exist in its working folder, prints the nanoBragg
``distance=... (FxS pixels)`` line and writes a deterministic float32 image (fast-major).
"""

import math
import os
import sys
from array import array


def option(argv, name, default=None):
    for i, tok in enumerate(argv[:-1]):
        if tok == name:
            return argv[i + 1]
    return default


def check_inputs(argv):
    for flag in ("-sourcefile", "-hkl", "-mat"):
        path = option(argv, flag)
        if path is not None and not os.path.isfile(path):
            print(f"ERROR: cannot open {path} in {os.getcwd()}", file=sys.stderr)
            sys.exit(9)


def pattern(fpixels, spixels, spacing=9, sigma=1.3):
    """Gaussian spots on a lattice over a weak smooth background (row-major = slow-major)."""
    out = array("f")
    for s in range(spixels):
        for f in range(fpixels):
            df = (f + 4) % spacing - spacing / 2.0
            ds = (s + 2) % spacing - spacing / 2.0
            amp = 100.0 + 10.0 * ((f * 7 + s * 13) % 11)
            out.append(amp * math.exp(-(df * df + ds * ds) / (2 * sigma * sigma)) + 0.5 + 0.01 * f + 0.02 * s)
    return out


def geometry(argv):
    n = int(option(argv, "-detpixels", "64"))
    return n, n


def announce(fpixels, spixels):
    print("fake nanoBragg")
    print(
        f"  distance=0.1 detsize={fpixels * 1e-4:g}x{spixels * 1e-4:g}  pixel=0.0001 meters "
        f"({fpixels}x{spixels} pixels)",
        flush=True,
    )


def write(argv, data):
    name = option(argv, "-floatfile", "floatimage.bin")
    with open(name, "wb") as fh:
        data.tofile(fh)
    print(f"writing {name} as {len(data)} 4-byte floats")


def render(argv, transform=None, fpixels=None, spixels=None):
    check_inputs(argv)
    f0, s0 = geometry(argv)
    fpixels, spixels = fpixels or f0, spixels or s0
    announce(fpixels, spixels)
    data = pattern(fpixels, spixels)
    if transform is not None:
        data = array("f", transform(data))
    write(argv, data)
