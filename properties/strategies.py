"""Reusable Hypothesis strategies for nbjax property tests, and helpers that turn them into
nanoBragg command lines and source files.

Every strategy documents its ranges.  Units follow the nanoBragg flags: cell lengths in
Angstrom, angles in degrees, wavelengths in Angstrom for ``-lambda`` but in METRES in source
files, distances in mm.  Floats are drawn finite and written with ``repr`` (shortest round-trip
spelling), so the values nbjax parses are exactly the values drawn.

Compilation cost: ``nbjax.render`` is jitted, and a new detector size, source count, tile,
dtype or mode compiles again (~0.5 s each).  Tests therefore use a fixed detector size
(``DETPIXELS``) and ``-oversample 1``; only the number of sources varies.  ``command_lines``
(the live C parity property) is the exception: it draws whole command lines, so nearly every
example compiles anew (~0.3-1 s).
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
from hypothesis import strategies as st

from nbjax.ctables.constants import SOURCE_DISTANCE
from nbjax.ctables.conventions import CONVENTIONS as _CONVENTIONS

DETPIXELS = 10  # the detector size every property test uses unless it draws one

CONVENTIONS = tuple(_CONVENTIONS)  # the convention flags, without '-'

# Incident beam direction (sample -> detector) of each convention, as the C program sets it.
BEAM_VECTORS = {name: tuple(float(x) for x in conv.beam) for name, conv in _CONVENTIONS.items()}


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
    system = draw(
        st.sampled_from(("cubic", "tetragonal", "orthorhombic", "hexagonal", "rhombohedral", "monoclinic", "triclinic"))
    )
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
    """(S, 5) table X Y Z weight lambda_m: positions SOURCE_DISTANCE from the sample towards the
    source (direction -beam, tilted), optionally with replaced weights or wavelengths."""
    beam = np.asarray(beam, dtype=float)
    u, v = perpendicular_axes(beam)
    rows = []
    for k, s in enumerate(srcs):
        pos = SOURCE_DISTANCE * (-beam + math.tan(s.tilt_1) * u + math.tan(s.tilt_2) * v)
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
        argv += [
            "-default_F",
            "100",
            "-N",
            str(self.N),
            "-lambda",
            repr(self.lambda_A),
            "-distance",
            repr(self.distance_mm),
            "-detpixels",
            str(detpixels),
            "-oversample",
            "1",
            "-polar",
            repr(self.kahn),
        ]
        return argv + list(extra)


def geometries(n=None):
    """Geometry: ``cells()``, ``missets()``, N from ``crystal_sizes()`` (or ``n``), lambda
    0.8..2 A, distance 50..200 mm, any convention, Kahn factor 0..1."""
    return st.builds(
        Geometry,
        cells(),
        missets(),
        n or crystal_sizes(),
        wavelengths_A(),
        distances_mm(),
        conventions(),
        kahn_factors(),
    )


# ----------------------------------------------------------------------------------------------
# whole command lines, for the live parity property (test_parity_live.py)
#
# Every drawn command line is valid for the C program (it renders a finite image) and small:
# at most 32 x 32 pixels and at most PARITY_MAX_SAMPLES samples per pixel (sources x mosaic
# domains x phi steps x oversample^2, C's ``steps``), so one C run takes well under a second.
# The flag groups are shuffled, so flags whose order matters in C (-polar/-nopolar, -N/-Na,
# -detpixels/-detpixels_f) are exercised in both orders.

PARITY_MAX_SAMPLES = 200
PARITY_OUTPUT_FLAGS = ("-nonoise", "-nopgm", "-noprogress")
SOURCE_FILE_NAME = "sources.txt"


def c_divergence_count(divergence_mrad=None, divsteps=None, round_div=True):
    """How many divergence directions C generates for -divergence / -divsteps (nbjax's set-up
    rules, which the golden cases prove equal to nanoBragg.c's)."""
    from nbjax.setup.sampling import grid_rule
    from nbjax.setup.sources import divergence_grid

    axis = grid_rule(
        -1 if divsteps is None else divsteps, -1.0 if divergence_mrad is None else divergence_mrad / 1000.0, -1.0
    )
    beam, polar, vert = (np.array(v, dtype=float) for v in ((1, 0, 0), (0, 0, 1), (0, -1, 0)))
    return divergence_grid(axis, axis, (1, 0.0, 0.0), round_div, beam, polar, vert, 1e-10)[0].divsteps


def c_dispersion_count(dispersion_pct=None, dispsteps=None):
    """How many wavelengths C generates for -dispersion / -dispsteps (the dispersion defaults to
    0, not -1, so -dispsteps alone gives one wavelength)."""
    disp = 0.0 if dispersion_pct is None else dispersion_pct / 100.0
    if disp <= 0.0:
        return 1
    if dispsteps is None or dispsteps <= 1:
        return 2
    return dispsteps


@dataclasses.dataclass(frozen=True)
class CommandLine:
    """A nanoBragg command line (without -floatfile) and the fixture files it reads."""

    argv: tuple
    files: tuple  # ((name, text), ...)
    fpixels: int
    spixels: int
    samples: int  # C's steps: sources x mosaic domains x phi steps x oversample^2
    tags: tuple  # ("key: value", ...) for hypothesis.event

    @property
    def file_dict(self):
        return dict(self.files)


def source_file_text(rows):
    """A source file C reads without surprises: 5 columns, space separated, exact (repr)
    values, no comments, a trailing newline."""
    return "".join(" ".join(repr(float(x)) for x in row[:5]) + "\n" for row in rows)


@st.composite
def command_lines(draw, max_samples=PARITY_MAX_SAMPLES, max_pixels=32):
    """A random valid nanoBragg command line: any convention, cubic..triclinic cell, optional
    misset, -N or -Na/-Nb/-Nc (1..6), -lambda 0.8..2 A, -distance 50..300 mm, -pixel
    0.05..0.3 mm, an 8..max_pixels detector (square, or -detpixels_f/_s), detector rotations
    (-20..20 deg) and -twotheta (-45..45 deg), a beam centre (-Xbeam/-Ybeam or -ORGX/-ORGY),
    crystal shape, -default_F 1..1000, -polar K and/or -nopolar, -oversample 1..3, sources
    (nominal beam; a file of 1..6 sources near the beam with per-source wavelengths in metres
    and arbitrary weights; or a -divergence/-dispersion grid), -mosaic 0..3 deg with
    -mosaic_dom 1..4 (or C's automatic 10) and -mosaic_seed, and -phi/-osc/-phisteps including
    starts at phi exactly 0 and sweeps whose steps land on 0.  Samples per pixel stay
    <= max_samples."""
    groups, files, tags = [], [], []
    conv = draw(conventions())
    tags.append(f"convention: {conv}")
    groups.append(["-" + conv])

    # crystal
    cell = draw(cells())
    groups.append(["-cell", *(repr(x) for x in cell)])
    misset = draw(missets())
    if misset is not None:
        groups.append(["-misset", *(repr(x) for x in misset)])
    n_mode = draw(st.sampled_from(("N", "Nabc", "N+Nabc", "default")))
    tags.append(f"crystal size: {n_mode}")
    if n_mode in ("N", "N+Nabc"):
        groups.append(["-N", str(draw(crystal_sizes()))])
    if n_mode in ("Nabc", "N+Nabc"):
        for flag in ("-Na", "-Nb", "-Nc"):
            n = draw(st.none() | crystal_sizes())
            if n is not None:
                groups.append([flag, str(n)])
    shape = draw(st.sampled_from((None, "-square_xtal", "-round_xtal", "-gauss_xtal", "-tophat_spots")))
    tags.append(f"shape: {shape or 'default'}")
    if shape:
        groups.append([shape])
    groups.append(["-default_F", repr(draw(_floats(1.0, 1000.0)))])

    # beam
    lam = draw(st.none() | wavelengths_A())
    if lam is not None:
        groups.append(["-lambda", repr(lam)])
    kahn = draw(st.none() | kahn_factors())
    nopolar = draw(st.booleans())
    if kahn is not None:
        groups.append(["-polar", repr(kahn)])
    if nopolar:
        groups.append(["-nopolar"])
    tags.append(
        "polarization: "
        f"{'-polar' if kahn is not None else ''}{'+' if kahn is not None and nopolar else ''}"
        f"{'-nopolar' if nopolar else ''}"
        if (kahn is not None or nopolar)
        else "polarization: default"
    )

    # detector
    square = draw(st.booleans())
    if square:
        fpix = spix = draw(st.integers(8, max_pixels))
        groups.append(["-detpixels", str(fpix)])
    else:
        fpix, spix = draw(st.integers(8, max_pixels)), draw(st.integers(8, max_pixels))
        groups.append([draw(st.sampled_from(("-detpixels_f", "-detpixels_x"))), str(fpix)])
        groups.append([draw(st.sampled_from(("-detpixels_s", "-detpixels_y"))), str(spix)])
    tags.append(f"detector: {'square' if square else 'non-square'}")
    pixel = draw(st.none() | _floats(0.05, 0.3))
    if pixel is not None:
        groups.append(["-pixel", repr(pixel)])
    dist = draw(st.none() | _floats(50.0, 300.0))
    if dist is not None:
        groups.append(["-distance", repr(dist)])
    for flag in ("-detector_rotx", "-detector_roty", "-detector_rotz"):
        angle = draw(st.none() | _floats(-20.0, 20.0))
        if angle is not None:
            groups.append([flag, repr(angle)])
    twotheta = draw(st.none() | _floats(-45.0, 45.0))
    if twotheta is not None:
        groups.append(["-twotheta", repr(twotheta)])
        tags.append("twotheta: yes")
    centre = draw(st.sampled_from((None, "Xbeam", "ORGX")))
    tags.append(f"beam centre: {centre or 'default'}")
    if centre == "Xbeam":
        px = 0.1 if pixel is None else pixel
        groups.append(["-Xbeam", repr(draw(_floats(-0.25, 1.25)) * spix * px)])
        groups.append(["-Ybeam", repr(draw(_floats(-0.25, 1.25)) * fpix * px)])
    elif centre == "ORGX":
        groups.append(["-ORGX", repr(draw(_floats(-0.25, 1.25)) * fpix)])
        groups.append(["-ORGY", repr(draw(_floats(-0.25, 1.25)) * spix)])

    # sampling budget: sources x domains x phi steps x oversample^2 <= max_samples
    oversample = draw(st.integers(1, 3))
    groups.append(["-oversample", str(oversample)])
    budget = max_samples // oversample**2

    source_mode = draw(st.sampled_from(("nominal", "file", "grid")))
    n_sources = 1
    if source_mode == "file":
        beam = BEAM_VECTORS[conv]
        srcs = draw(source_sets(1, min(6, budget)), label="sources")
        text = source_file_text(source_rows(srcs, beam))
        files.append((SOURCE_FILE_NAME, text))
        groups.append(["-sourcefile", SOURCE_FILE_NAME])
        n_sources = len(srcs)
        if draw(st.integers(0, 9)) == 0:  # C ignores a divergence grid when a file gives the sources
            groups.append(["-divergence", repr(draw(_floats(0.01, 2.0)))])
            groups.append(["-divsteps", str(draw(st.integers(1, 4)))])
            tags.append("sources: file (+ ignored divergence)")
        else:
            tags.append("sources: file")
    elif source_mode == "grid":
        div = draw(st.none() | _floats(0.01, 2.0))
        # -divsteps alone selects a 1 rad range (C's count-only rule); rarely drawn.  Not
        # -divsteps 1 alone: C trims its only direction away, renders 0 sources and writes an
        # all-NaN image (nbjax cannot reproduce a NaN image; see the parity report).
        if div is not None:
            divsteps = draw(st.none() | st.integers(1, 4))
        else:
            divsteps = draw(st.integers(2, 4)) if draw(st.integers(0, 4)) == 0 else None
        round_div = not draw(st.booleans())
        n_div = c_divergence_count(div, divsteps, round_div)
        assert n_div >= 1, (div, divsteps, round_div)
        if div is not None:
            groups.append(["-divergence", repr(div)])
        if divsteps is not None:
            groups.append(["-divsteps", str(divsteps)])
        if not round_div:
            groups.append(["-square_div"])
        disp_cap = min(4, budget // n_div)
        disp = draw(st.none() | _floats(0.01, 2.0)) if disp_cap >= 2 else None
        dispsteps = draw(st.none() | st.integers(1, disp_cap)) if disp_cap >= 1 else None
        if disp is not None:
            groups.append(["-dispersion", repr(disp)])
        if dispsteps is not None:
            groups.append(["-dispsteps", str(dispsteps)])
        n_sources = n_div * c_dispersion_count(disp, dispsteps)
        tags.append(
            "sources: grid "
            f"({'divergence' if n_div > 1 else ''}{'+' if n_div > 1 and n_sources > n_div else ''}"
            f"{'dispersion' if n_sources > n_div else ''}{'degenerate' if n_sources == 1 else ''})"
        )
    else:
        tags.append("sources: nominal beam")
    assert n_sources <= budget, (n_sources, budget)

    # mosaic domains
    dom_cap = min(4, budget // n_sources)
    mosaic_mode = draw(st.sampled_from(("none", "spread+domains", "spread", "domains")))
    spread = domains = None
    if mosaic_mode == "spread" and budget // n_sources < 10:
        mosaic_mode = "spread+domains"  # C would pick 10 domains: too many samples
    if mosaic_mode in ("spread+domains", "spread"):
        spread = draw(st.sampled_from((0.0,)) | _floats(0.0, 3.0))
    if mosaic_mode in ("spread+domains", "domains"):
        domains = draw(st.integers(1, dom_cap))
    n_domains = 1
    if spread is not None and spread > 0.0:
        n_domains = 10 if domains is None else domains
    if spread is not None:
        groups.append(["-mosaic", repr(spread)])
    if domains is not None:
        groups.append(["-mosaic_dom", str(domains)])
    if mosaic_mode != "none" and draw(st.booleans()):
        groups.append(["-mosaic_seed", str(draw(st.integers(0, 2**31 - 1)))])
    tags.append(f"mosaic: {mosaic_mode}")

    # phi
    phi_cap = min(4, budget // (n_sources * n_domains))
    phi_mode = draw(st.sampled_from(("none", "zero start", "lands on zero", "any")))
    phisteps = draw(st.none() | st.integers(1, phi_cap))
    if phi_mode == "lands on zero" and phi_cap < 2:
        phi_mode = "zero start"
    osc = None
    if phi_mode == "lands on zero":
        phisteps = draw(st.integers(2, phi_cap))
        osc = float(draw(st.integers(1, 6)))
        phi0 = -draw(st.integers(1, phisteps - 1)) * osc / phisteps
    else:
        if phisteps is not None or phi_cap >= 2:
            osc = draw(st.none() | st.sampled_from((0.0,)) | _floats(0.0, 5.0))
        phi0 = {"none": None, "zero start": 0.0}.get(phi_mode)
        if phi_mode == "any":
            phi0 = draw(_floats(-180.0, 180.0))
    if phi0 is not None:
        groups.append(["-phi", draw(st.sampled_from(("0", "0.0"))) if phi0 == 0.0 else repr(phi0)])
    if osc is not None:
        groups.append(["-osc", repr(osc)])
    if phisteps is not None:
        groups.append(["-phisteps", str(phisteps)])
        if osc is not None and draw(st.integers(0, 5)) == 0:  # everything specified
            groups.append(["-phistep", repr(draw(_floats(0.0, 2.0)))])
    n_phi = phisteps if phisteps is not None else (2 if osc is not None else 1)
    tags.append(f"phi: {phi_mode}")

    groups.append(list(PARITY_OUTPUT_FLAGS))
    groups = draw(st.permutations(groups))
    samples = n_sources * n_domains * n_phi * oversample**2
    assert samples <= max_samples, samples
    tags.append(f"oversample: {oversample}")
    argv = tuple(t for g in groups for t in g)
    return CommandLine(argv, tuple(files), fpix, spix, samples, tuple(tags))
