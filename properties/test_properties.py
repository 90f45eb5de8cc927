"""Property tests of nbjax over random geometries and source sets (see strategies.py for ranges).

(a) C-compatible mode ignores the weight column: any weights give a bit-identical image.
(b) Duplicating every source leaves the image unchanged (steps doubles too), C and physical mode.
(c) A wavelength column equal to -lambda is the same as no wavelength column.
(d) Tile size and precision do not change the image; the CLI's float file is the API image.
(e) Gradients w.r.t. source wavelengths and detector distance are finite.

Every test renders a DETPIXELS x DETPIXELS detector with -oversample 1 so jit compilations are
shared between examples and tests (only the source count changes the shapes).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, note
from hypothesis import strategies as st
from strategies import (
    BEAM_VECTORS,
    CONVENTIONS,
    DETPIXELS,
    Geometry,
    geometries,
    positive_weights,
    source_rows,
    source_sets,
    source_weights,
    write_source_file,
)

import nbjax
from nbjax.cli.main import run
from nbjax_bridge.metrics import pearson


@contextlib.contextmanager
def workdir():
    """A fresh temporary directory, made the working directory (the CLI writes files there)."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="nbjax-prop-") as tmp:
        os.chdir(tmp)
        try:
            yield tmp
        finally:
            os.chdir(old)


def render_with_sources(geo: Geometry, rows, columns=5, physical=False, dtype=jnp.float64, tile=None, extra=()):
    """Write rows to a source file, build the experiment and render it (numpy float64/32)."""
    with tempfile.TemporaryDirectory(prefix="nbjax-prop-") as tmp:
        path = write_source_file(os.path.join(tmp, "sources.txt"), rows, columns)
        exp = nbjax.experiment_from_args(geo.args(extra=["-sourcefile", path, *extra]), physical=physical)
    return np.asarray(nbjax.render(exp, dtype=dtype, tile=tile)), exp


def test_beam_vectors_match_conventions():
    """strategies.BEAM_VECTORS (used to place sources near the beam) agrees with nbjax."""
    for conv in CONVENTIONS:
        exp = nbjax.experiment_from_args(["-" + conv, "-cell", "50", "-default_F", "1", "-detpixels", "8"])
        np.testing.assert_array_equal(np.asarray(exp.detector.beam), BEAM_VECTORS[conv], err_msg=conv)


# (a) -----------------------------------------------------------------------------------------


@given(geo=geometries(), srcs=source_sets(), data=st.data())
def test_weights_ignored_in_c_mode(geo, srcs, data):
    """C-compatible mode: the image does not depend on the weight column (bit for bit)."""
    other = data.draw(st.lists(source_weights(), min_size=len(srcs), max_size=len(srcs)), label="other weights")
    img1, _ = render_with_sources(geo, source_rows(srcs, geo.beam))
    img2, _ = render_with_sources(geo, source_rows(srcs, geo.beam, weights=other))
    img3, _ = render_with_sources(geo, source_rows(srcs, geo.beam, weights=[1.0] * len(srcs)))
    assert np.all(np.isfinite(img1))
    assert np.array_equal(img1, img2), f"max |diff| {np.max(np.abs(img1 - img2))}"
    assert np.array_equal(img1, img3), f"max |diff| {np.max(np.abs(img1 - img3))}"


# (b) -----------------------------------------------------------------------------------------


def _assert_close(a, b, rtol, what):
    scale = np.max(np.abs(a))
    bad = np.abs(a - b) > rtol * np.abs(a) + rtol * 1e-3 * scale
    assert not bad.any(), (
        f"{what}: {np.count_nonzero(bad)} pixels differ; max rel diff "
        f"{np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)):.3g} > {rtol:g}"
    )


@given(geo=geometries(), srcs=source_sets())
def test_duplicating_sources_c_mode(geo, srcs):
    """Every source twice: sum over 2S sources divided by 2S steps = the S-source image."""
    rows = source_rows(srcs, geo.beam)
    img1, exp1 = render_with_sources(geo, rows)
    img2, exp2 = render_with_sources(geo, np.concatenate([rows, rows]))
    assert exp2.steps == 2 * exp1.steps
    _assert_close(img1, img2, 1e-12, "duplicated sources (C mode)")


@given(geo=geometries(), srcs=source_sets(max_size=3, weights=positive_weights()))
def test_duplicating_sources_physical_mode(geo, srcs):
    """Physical mode normalises the weights, so duplicating every source changes nothing either."""
    rows = source_rows(srcs, geo.beam)
    img1, _ = render_with_sources(geo, rows, physical=True)
    img2, _ = render_with_sources(geo, np.concatenate([rows, rows]), physical=True)
    assert np.all(np.isfinite(img1))
    _assert_close(img1, img2, 1e-12, "duplicated sources (physical mode)")


# (c) -----------------------------------------------------------------------------------------


@given(geo=geometries(), srcs=source_sets(), columns=st.sampled_from((3, 4)))
def test_wavelength_column_equal_to_lambda(geo, srcs, columns):
    """X Y Z [w] lambda with lambda = -lambda (in m) renders exactly like X Y Z [w] (lambda0 default)."""
    lambda_m = geo.lambda_A / 1.0e10  # as the -lambda flag converts it (C: atof()/1.0e10)
    rows = source_rows(srcs, geo.beam, wavelengths=[lambda_m] * len(srcs))
    img5, exp5 = render_with_sources(geo, rows, columns=5)
    img3, exp3 = render_with_sources(geo, rows, columns=columns)
    np.testing.assert_array_equal(np.asarray(exp3.beam.wavelengths), np.asarray(exp5.beam.wavelengths))
    assert np.array_equal(img5, img3), f"max |diff| {np.max(np.abs(img5 - img3))}"


# (d) -----------------------------------------------------------------------------------------


@given(geo=geometries(), srcs=source_sets(max_size=3))
def test_tile_size_does_not_change_image(geo, srcs):
    rows = source_rows(srcs, geo.beam)
    img, exp = render_with_sources(geo, rows)
    img7 = np.asarray(nbjax.render(exp, tile=7))
    # Not always bit-identical: XLA compiles a 7-pixel tile and a 65536-pixel tile differently
    # (vectorisation, fused multiply-adds), which moves the last bits; 1e-12 of the image max.
    note(f"bit-identical: {np.array_equal(img, img7)}")
    err = np.max(np.abs(img - img7)) / max(np.max(np.abs(img)), 1e-300)
    assert err <= 1e-12, f"tile=7 vs default tile: max |diff| / max |image| = {err:.3g} > 1e-12"


@given(geo=geometries(), srcs=source_sets(max_size=3))
def test_float32_matches_float64(geo, srcs):
    rows = source_rows(srcs, geo.beam)
    img64, exp = render_with_sources(geo, rows)
    img32 = np.asarray(nbjax.render(exp, dtype=jnp.float32)).astype(np.float64)
    assert np.all(np.isfinite(img32))
    ratio = img32.sum() / img64.sum()
    assert abs(ratio - 1.0) <= 1e-3, f"sum ratio float32/float64 = {ratio!r}"
    if np.ptp(img64) > 0:
        corr = pearson(img64, img32)
        assert corr >= 0.9999, f"correlation float32 vs float64 = {corr!r}"


@given(geo=geometries(), srcs=source_sets(max_size=3))
def test_cli_float_image_equals_api_image(geo, srcs):
    """nbjax CLI -floatfile (float32) == float32 cast of render(experiment_from_args(argv)), to 1e-6."""
    old_cache = os.environ.get("NBJAX_CACHE_DIR")
    os.environ["NBJAX_CACHE_DIR"] = "off"  # no persistent compilation cache from the CLI
    try:
        with workdir() as tmp:
            src = write_source_file(os.path.join(tmp, "sources.txt"), source_rows(srcs, geo.beam))
            argv = geo.args(extra=["-sourcefile", src, "-floatfile", "float.bin", "-nonoise", "-nopgm", "-noprogress"])
            out, err = io.StringIO(), io.StringIO()
            assert run(argv, out=out, err=err) == 0, err.getvalue()
            cli = np.fromfile(os.path.join(tmp, "float.bin"), dtype="<f4").reshape(DETPIXELS, DETPIXELS)
            api = np.asarray(nbjax.render(nbjax.experiment_from_args(argv))).astype(np.float32)
    finally:
        if old_cache is None:
            os.environ.pop("NBJAX_CACHE_DIR", None)
        else:
            os.environ["NBJAX_CACHE_DIR"] = old_cache
    # two compilations (the CLI renders in several jitted calls, without rematerialisation):
    # equal up to rounding, not necessarily bit for bit on every CPU
    _assert_close(api.astype(np.float64), cli.astype(np.float64), 1e-6, "CLI float image vs API image")


# (e) -----------------------------------------------------------------------------------------


@given(geo=geometries(), srcs=source_sets(max_size=2), seed=st.integers(0, 2**32 - 1))
def test_gradients_finite(geo, srcs, seed):
    """d sum(image * W) / d(source wavelengths, detector distance) is finite everywhere."""
    _, exp = render_with_sources(geo, source_rows(srcs, geo.beam))
    W = jnp.asarray(np.random.default_rng(seed).random((DETPIXELS, DETPIXELS)))

    def loss(p):
        e = eqx.tree_at(lambda e: (e.beam.wavelengths, e.detector.distance), exp, (p["wavelengths"], p["distance"]))
        return jnp.sum(nbjax.render(e) * W)

    p0 = {"wavelengths": exp.beam.wavelengths, "distance": exp.detector.distance}
    value, grad = jax.value_and_grad(loss)(p0)
    assert np.isfinite(float(value))
    for name, g in grad.items():
        assert np.all(np.isfinite(np.asarray(g))), f"d loss / d {name} = {g}"
