"""The detector conventions of the C program: unit vectors and pivot each one imposes.

C's convention block (after parsing) overwrites the beam, detector, two-theta, polarization and
spindle vectors and re-asserts the pivot for every convention but CUSTOM (reference notes 0.6);
CUSTOM keeps the start-up vectors as modified by the ``-*_vector`` flags.  Vectors are in C's lab
frame, beam = the direction the X-rays travel (sample towards detector).
"""

from __future__ import annotations

from typing import NamedTuple

Vector = tuple[int, int, int]  # the tables' unit vectors along lab axes: components 0, 1 or -1 (ints)


class Convention(NamedTuple):
    beam: Vector
    fdet: Vector
    sdet: Vector
    odet: Vector
    twotheta_axis: Vector
    polar: Vector
    spindle: Vector
    pivot: str  # "beam" or "sample"


CONVENTIONS: dict[str, Convention] = {
    "adxv": Convention((0, 0, 1), (1, 0, 0), (0, -1, 0), (0, 0, 1), (-1, 0, 0), (1, 0, 0), (1, 0, 0), "beam"),
    "mosflm": Convention((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1), (0, 0, 1), "beam"),
    "denzo": Convention((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 0, -1), (0, 0, 1), (0, 0, 1), "beam"),
    "xds": Convention((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 0), (1, 0, 0), (1, 0, 0), "sample"),
    "dials": Convention((0, 0, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 0), (0, 1, 0), (0, 1, 0), "sample"),
}
"""Keyed by the lower-case flag name without '-' (``-mosflm`` -> ``mosflm``)."""

CUSTOM = Convention((1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1), "beam")
"""The vectors C starts with (its declarations); CUSTOM uses them unless a ``-*_vector`` flag
replaces one.  The two-theta axis (0,1,0) differs from MOSFLM's (0,0,-1)."""

DEFAULT_CONVENTION = "mosflm"


def beam_vector(name: str) -> Vector:
    """The beam direction of convention ``name`` (any case; "custom" gives the start-up beam)."""
    key = name.lower()
    return CUSTOM.beam if key == "custom" else CONVENTIONS[key].beam
