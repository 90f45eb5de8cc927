"""Reusable Hypothesis strategies for nbjax property tests, and helpers that turn them into
nanoBragg command lines and source files.

Every strategy documents its ranges.  Units follow the nanoBragg flags: cell lengths in
Angstrom, angles in degrees, wavelengths in Angstrom for ``-lambda`` but in METRES in source
files, distances in mm.  Floats are drawn finite and written with ``repr`` (shortest round-trip
spelling), so the values nbjax parses are exactly the values drawn.

Compilation cost: ``nbjax.render`` is jitted, and a new detector size, source count, tile,
dtype or mode compiles again (~0.5 s each).  Tests therefore use a fixed detector size
(``DETPIXELS``) and ``-oversample 1``; only the number of sources varies.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from hypothesis import strategies as st

DETPIXELS = 10  # the detector size every property test uses unless it draws one

CONVENTIONS = ("mosflm", "xds", "dials", "denzo", "adxv")

# Incident beam direction (sample -> detector) of each convention, as the C program sets it.
BEAM_VECTORS = {
    "mosflm": (1.0, 0.0, 0.0),
    "denzo": (1.0, 0.0, 0.0),
    "xds": (0.0, 0.0, 1.0),
    "dials": (0.0, 0.0, 1.0),
    "adxv": (0.0, 0.0, 1.0),
}

SOURCE_DISTANCE_M = 10.0  # how far from the sample source positions are written (only direction matters)


def _floats(lo, hi):
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------------------------
# crystal


@st.composite
def cells(draw):
    """Unit cell (a, b, c in A; alpha, beta, gamma in degrees), cubic through triclinic.

    Lengths 30..150 A.  Systems: cubic (a=b=c, 90/90/90), tetragonal (a=b), orthorhombic,
    hexagonal (a=b, gamma=120), rhombohedral (a=b=c, alpha=beta=gamma in 60..100), monoclinic
    (beta 91..120) and triclinic (each angle 70..110, which always gives a valid cell).
    """
    length = _floats(30.0, 150.0)
    system = draw(st.sampled_from(("cubic", "tetragonal", "orthorhombic", "hexagonal", "rhombohedral", "monoclinic", "triclinic")))
    a = draw(length)
    if system == "cubic":
        return (a, a, a, 90.0, 90.0, 90.0)
    if system == "rhombohedral":
        al = draw(_floats(60.0, 100.0))
        return (a, a, a, al, al, al)
    if system in ("tetragonal", "hexagonal"):
        c = draw(length)
        return (a, a, c, 90.0, 90.0, 120.0 if system == "hexagonal" else 90.0)
    b, c = draw(length), draw(length)
    if system == "orthorhombic":
        return (a, b, c, 90.0, 90.0, 90.0)
    if system == "monoclinic":
        return (a, b, c, 90.0, draw(_floats(91.0, 120.0)), 90.0)
    angle = _floats(70.0, 110.0)
    return (a, b, c, draw(angle), draw(angle), draw(angle))


def missets():
    """None (no -misset) or three rotation angles about x, y, z in degrees, each -180..180."""
    return st.none() | st.tuples(*(_floats(-180.0, 180.0),) * 3)


def crystal_sizes():
    """Unit cells per axis (-N), 1..6."""
    return st.integers(min_value=1, max_value=6)


def kahn_factors():
    """Kahn polarization factor (-polar), 0..1."""
    return _floats(0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# beam and detector


def wavelengths_A():
    """Nominal wavelength (-lambda), 0.8..2.0 A."""
    return _floats(0.8, 2.0)


def wavelengths_m():
    """A source-file wavelength, 0.8e-10..2.0e-10 m."""
    return _floats(0.8e-10, 2.0e-10)


def detector_pixels():
    """Square detector edge in pixels (-detpixels), 8..24 (small, for speed)."""
    return st.integers(min_value=8, max_value=24)


def distances_mm():
    """Sample-to-detector distance (-distance), 50..200 mm."""
    return _floats(50.0, 200.0)


def conventions():
    """Detector convention flag: one of mosflm, xds, dials, denzo, adxv."""
    return st.sampled_from(CONVENTIONS)


# ----------------------------------------------------------------------------------------------
# sources


@dataclasses.dataclass(frozen=True)
class Source:
    """One source: tilts (rad) away from the nominal source direction -beam, wavelength (m), weight."""

    tilt_1: float
    tilt_2: float
    wavelength_m: float
    weight: float


def source_weights():
    """A weight column value: the special values 0, negative, tiny (1e-300, the smallest
    subnormal 5e-324) and huge (1e300), as well as ordinary values in -1e3..1e3."""
    special = st.sampled_from((0.0, -1.0, -0.25, 1e-300, 5e-324, 1e300, 1.0))
    return special | _floats(-1e3, 1e3)


def positive_weights():
    """Weights usable in physical mode (which normalises them): 1e-300..1e300, most 1e-3..1e3."""
    return st.sampled_from((1e-300, 1e300, 1.0)) | _floats(1e-3, 1e3)


def tilts():
    """Angular offset of a source from the nominal beam, -5..5 mrad (0 included)."""
    return st.just(0.0) | _floats(-5e-3, 5e-3)


def sources(weights=None, wavelengths=None):
    """One Source: tilts -5..5 mrad, wavelength 0.8e-10..2e-10 m, weight from ``weights``
    (default ``source_weights()``)."""
    wavelengths = wavelengths_m() if wavelengths is None else wavelengths
    weights = source_weights() if weights is None else weights
    return st.builds(Source, tilts(), tilts(), wavelengths, weights)


def source_sets(min_size=1, max_size=6, weights=None, wavelengths=None):
    """Lists of min_size..max_size (default 1..6) sources near the beam; see ``sources``."""
    return st.lists(sources(weights, wavelengths), min_size=min_size, max_size=max_size)


def perpendicular_axes(beam):
    """Two unit vectors orthogonal to ``beam`` and to each other."""
    beam = np.asarray(beam, dtype=float)
    helper = np.array([0.0, 1.0, 0.0]) if abs(beam[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(beam, helper)
    u /= np.linalg.norm(u)
    return u, np.cross(beam, u)


def source_rows(srcs, beam, weights=None, wavelengths=None):
    """(S, 5) table X Y Z weight lambda_m: positions SOURCE_DISTANCE_M from the sample towards the
    source (direction -beam, tilted), optionally with replaced weights or wavelengths."""
    beam = np.asarray(beam, dtype=float)
    u, v = perpendicular_axes(beam)
    rows = []
    for k, s in enumerate(srcs):
        pos = SOURCE_DISTANCE_M * (-beam + math.tan(s.tilt_1) * u + math.tan(s.tilt_2) * v)
        w = s.weight if weights is None else weights[k]
        lam = s.wavelength_m if wavelengths is None else wavelengths[k]
        rows.append([pos[0], pos[1], pos[2], w, lam])
    return np.array(rows, dtype=np.float64)


def write_source_file(path, rows, columns=5):
    """Write the first ``columns`` columns of ``rows``, space separated, exact (repr) values, one
    source per line with a trailing newline and no comments.  Returns the path as a string."""
    with open(path, "w") as handle:
        for row in rows:
            handle.write(" ".join(repr(float(x)) for x in row[:columns]) + "\n")
    return os.fspath(path)


# ----------------------------------------------------------------------------------------------
# whole experiments


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Everything but the sources and the detector size."""

    cell: tuple
    misset: tuple | None
    N: int
    lambda_A: float
    distance_mm: float
    convention: str
    kahn: float

    @property
    def beam(self):
        return BEAM_VECTORS[self.convention]

    def args(self, detpixels=DETPIXELS, extra=()):
        """nanoBragg argv for this geometry (oversample 1, default_F 100)."""
        argv = ["-" + self.convention, "-cell", *(repr(x) for x in self.cell)]
        if self.misset is not None:
            argv += ["-misset", *(repr(x) for x in self.misset)]
        argv += ["-default_F", "100", "-N", str(self.N), "-lambda", repr(self.lambda_A),
                 "-distance", repr(self.distance_mm), "-detpixels", str(detpixels), "-oversample", "1",
                 "-polar", repr(self.kahn)]
        return argv + list(extra)


def geometries(n=None):
    """Geometry: ``cells()``, ``missets()``, N from ``crystal_sizes()`` (or ``n``), lambda
    0.8..2 A, distance 50..200 mm, any convention, Kahn factor 0..1."""
    return st.builds(Geometry, cells(), missets(), n or crystal_sizes(), wavelengths_A(), distances_mm(), conventions(), kahn_factors())
