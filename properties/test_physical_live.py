"""Live physical-mode decomposition: for random small experiments with a file of 1..4 weighted
sources (``strategies.source_sets`` with ``positive_weights``: tilts -5..5 mrad, wavelengths
0.8..2 A, weights 1e-300..1e300), -oversample 1..3, any convention, optional detector tilts
(-10..10 deg about x, y, z) or sensor layers, a Kahn factor and one of -curved_det,
-point_pixel (physical pixel = block MEAN), -nopolar, -dmin, crystal shapes, nbjax's physical image equals
sum_i w_i/sum(w) blocksum(C_i), C_i being the C image with source i alone on the
oversample-times finer grid (and, with layers, the single-layer C runs of each layer;
``decompose.py`` explains the decompositions and the beam centre).

Tolerance as tests/test_physical_decomposition.py: per pixel, the float32 rounding of the
stored C images (2^-24 of each term) plus 1e-9 of the image maximum.

Needs the C nanoBragg: set NB_C_BIN to the executable, else the module is skipped.  C runs
single-threaded in a temporary folder (``test_parity_live.run_c``); nbjax renders in-process
(``nbjax.experiment_from_args(..., physical=True)``) in float64.  Examples per run:
$NBJAX_PARITY_EXAMPLES, else 10 under the ``ci`` profile and the profile's max_examples
otherwise.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from decompose import Spec, block_sum, decompose, physical_run
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from strategies import (
    BEAM_VECTORS,
    cells,
    conventions,
    crystal_sizes,
    distances_mm,
    kahn_factors,
    positive_weights,
    source_rows,
    source_sets,
    wavelengths_A,
)
from test_parity_live import _max_examples, _stage, run_c

C_BIN = os.environ.get("NB_C_BIN", "")
if not C_BIN or not os.path.isfile(C_BIN) or not os.access(C_BIN, os.X_OK):
    pytest.skip(
        "live physical decomposition needs the C nanoBragg: set NB_C_BIN to the executable", allow_module_level=True
    )

C_ROUNDING = 2.0**-24 * (1 + 1e-6)
DOUBLE_REL = 1e-9
RUNS = {"nbjax": 0}


@st.composite
def specs(draw):
    """A Spec: 8..16 pixels of 0.1, 0.12 or 0.2 mm, the beam centre anywhere on the detector,
    1..4 weighted sources, -oversample 1..3, a flat detector, a tilted one, or a flat one with a
    sensor 20..500 um thick in 2..3 layers with attenuation length 50..1000 um, and at most one
    of -curved_det (not with layers), -point_pixel, -nopolar, -dmin 3, -round_xtal,
    -gauss_xtal, -tophat_spots."""
    conv = draw(conventions())
    cell = draw(cells())
    base = (
        "-cell",
        *(repr(x) for x in cell),
        "-default_F",
        "100",
        "-N",
        str(draw(crystal_sizes())),
        "-lambda",
        repr(draw(wavelengths_A())),
        "-polar",
        repr(draw(kahn_factors())),
    )
    kind = draw(st.sampled_from(("flat", "tilted", "layers")))
    options = (
        ("-curved_det",),
        ("-point_pixel",),
        ("-nopolar",),
        ("-dmin", "3"),
        ("-round_xtal",),
        ("-gauss_xtal",),
        ("-tophat_spots",),
    )
    option = draw(st.sampled_from(((),) + tuple(o for o in options if kind != "layers" or o != ("-curved_det",))))
    base += option
    pixels = draw(st.integers(8, 16))
    pixel = draw(st.sampled_from((0.1, 0.12, 0.2)))
    size = pixels * pixel
    xbeam, ybeam = draw(st.floats(0.0, size)), draw(st.floats(0.0, size))
    rotations = ()
    if kind == "tilted":
        rotations = tuple(
            (flag, draw(st.floats(-10.0, 10.0)))
            for flag in ("-detector_rotx", "-detector_roty", "-detector_rotz")
            if draw(st.booleans())
        )
    srcs = draw(source_sets(1, 4, weights=positive_weights()))
    rows = tuple(tuple(r) for r in source_rows(srcs, BEAM_VECTORS[conv]))
    k = draw(st.integers(1, 3))
    layers = None
    if kind == "layers":
        layers = (draw(st.floats(20.0, 500.0)), draw(st.integers(2, 3)), draw(st.floats(50.0, 1000.0)))
    return Spec(
        base,
        pixels,
        pixel,
        draw(distances_mm()),
        xbeam,
        ybeam,
        convention=conv,
        rotations=rotations,
        oversample=k,
        sources=rows,
        layers=layers,
    )


def render_physical(argv, files, folder: Path) -> np.ndarray:
    import jax

    import nbjax

    RUNS["nbjax"] += 1
    if RUNS["nbjax"] % 25 == 0:  # every example compiles anew; see test_parity_live.run_nbjax
        jax.clear_caches()
    _stage(folder, files)
    old = os.getcwd()
    os.chdir(folder)
    try:
        return np.asarray(nbjax.render(nbjax.experiment_from_args(argv, physical=True)), dtype=np.float64)
    finally:
        os.chdir(old)


def c_changes_the_cell(base) -> bool:
    """True when nanoBragg's set-up does not give back the -cell of ``base`` (the quirk
    ``ccompat.quirks.cell_warning`` announces).  Then its spot shapes' a*, b*, c* are not the
    reciprocal vectors of the cell it renders, while physical mode uses that cell's, so the
    gauss and tophat shapes do not decompose into C runs there (found by this property:
    -cell 30 30 30 60 60 60 -gauss_xtal, 2.7e-4 of the peak)."""
    import nbjax

    i = base.index("-cell")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nbjax.experiment_from_args(list(base[i : i + 7]) + ["-default_F", "1", "-detpixels", "2"], physical=True)
    return any("set-up turns -cell" in str(w.message) for w in caught)


@settings(max_examples=_max_examples())
@given(spec=specs())
def test_physical_mode_is_the_weighted_sum_of_c_runs(spec):
    event(f"oversample {spec.oversample}")
    event(f"sources {len(spec.sources)}")
    event(f"sensor layers {spec.layers[1] if spec.layers else 0}")
    event(f"option {' '.join(spec.base[spec.base.index('-polar') + 2 :]) or 'none'}")
    argv, files = physical_run(spec)
    if any(shape in spec.base for shape in ("-gauss_xtal", "-tophat_spots")):
        assume(not c_changes_the_cell(spec.base))
    with tempfile.TemporaryDirectory(prefix="nbjax-physical-") as tmp:
        image = render_physical(argv, files, Path(tmp) / "py")
        expected = bound = 0.0
        for i, comp in enumerate(decompose(spec)):
            c, why = run_c(list(comp.args), _stage(Path(tmp) / f"c{i}", comp.files))
            assert c is not None, f"C failed on {' '.join(comp.args)}: {why}"
            n = spec.pixels * comp.block
            c = c.astype(np.float64).reshape(n, n)
            expected = expected + comp.coefficient * block_sum(c, comp.block)
            bound = bound + abs(comp.coefficient) * block_sum(np.abs(c), comp.block)
    peak = np.abs(expected).max()
    assert np.all(np.isfinite(image)) and np.all(np.isfinite(expected))
    excess = np.abs(image - expected) - C_ROUNDING * bound
    assert excess.max() <= DOUBLE_REL * peak, (
        f"physical mode differs from the C decomposition: max excess {excess.max():g} (peak {peak:g}) at "
        f"{np.unravel_index(np.argmax(excess), excess.shape)}\n  physical argv: {' '.join(argv)}\n  files: {files}"
    )
