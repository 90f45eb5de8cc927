"""The C program's structure-factor cache (``Fdump.bin``, ``-dump``).

Layout: the ASCII header ``"%d %d %d %d %d %d\\n\\f"`` (h_min h_max k_min k_max l_min l_max), then
the whole padded grid as native (little-endian) doubles: for h0 in 0..h_range, k0 in 0..k_range, a
run of l_range+1 values, i.e. an (h_range+1, k_range+1, l_range+1) array in C order.
"""

import os
import re

import numpy as np

from nbjax.errors import NBError, os_error_text, shown_path
from nbjax.io.atomic import write_bytes_atomic
from nbjax.io.hkl import HKLGrid, empty_grid

_HEADER = re.compile(rb"\s*([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\n\f")


def fdump_bytes(grid: HKLGrid) -> bytes:
    """The Fdump file for ``grid`` (its F must have the padded C shape)."""
    bounds = (grid.h_min, grid.h_max, grid.k_min, grid.k_max, grid.l_min, grid.l_max)
    shape = tuple(n + 1 for n in grid.ranges)
    if grid.F.shape != shape:
        raise NBError(f"Fdump: F has shape {grid.F.shape}, expected {shape} for ranges {bounds}")
    header = " ".join(str(int(b)) for b in bounds) + "\n\f"
    return header.encode("ascii") + np.ascontiguousarray(grid.F, dtype="<f8").tobytes()


def write_fdump(path: str | os.PathLike, grid: HKLGrid) -> None:
    """Write ``grid`` as an Fdump file, atomically."""
    write_bytes_atomic(path, fdump_bytes(grid))


def read_fdump(path: str | os.PathLike) -> HKLGrid:
    """Read an Fdump file; ``hkls`` is h_range*k_range*l_range as in C.

    The data start right after the form feed.  (C's ``fscanf("...\\n\\f")`` also swallows any
    white-space bytes that begin the first double, which corrupts its read; this reader does not.)
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}", exit_code=9) from None
    match = _HEADER.match(raw)
    if match is None:
        raise NBError(f"{path}: not an Fdump file (no 'h_min h_max k_min k_max l_min l_max' header)")
    bounds = tuple(int(x) for x in match.groups())
    F = empty_grid(bounds, str(path))
    data = raw[match.end() :]
    if len(data) != F.nbytes:
        raise NBError(f"{path}: {len(data)} data bytes, the {F.shape} grid needs {F.nbytes}")
    F[...] = np.frombuffer(data, dtype="<f8").reshape(F.shape)
    h_range, k_range, l_range = (n - 1 for n in F.shape)
    return HKLGrid(*bounds, F=F, hkls=h_range * k_range * l_range)
