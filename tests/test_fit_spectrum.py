"""The measured-spectrum fit parameters ``SpectrumShift`` and ``SpectrumScale`` (diffBragg's
two numbers for a spectrometer's calibration), in the style of tests/test_fit.py: the loss
gradient against float64 central differences, the written-out adjoint against the
Levenberg-Marquardt pass, and recovery from a noise-free truth rendered from a spectrum file
whose wavelengths were shifted and scaled in NumPy (independently of the parameters' code)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import nbjax
import nbjax.fit as nf
from nbjax.fit import _source_gradient

LAMBDAS_A = (0.985, 0.993, 1.0, 1.006, 1.017)
WEIGHTS = (0.6, 1.0, 2.0, 1.3, 0.5)
SHIFT_A, SCALE = 0.0023, 1.35  # the truth
BACKGROUND, PEAK = 2.0, 2000.0
ARGS = [
    "-cell",
    "60",
    "70",
    "80",
    "90",
    "90",
    "90",
    "-misset",
    "10",
    "-20",
    "30",
    "-default_F",
    "100",
    "-N",
    "6",
    "-detpixels",
    "40",
    "-pixel",
    "0.3",
    "-distance",
    "50",
    "-oversample",
    "1",
    "-polar",
    "0.7",
]


def _spectrum(tmp_path, name, lambdas_a):
    path = tmp_path / name
    path.write_text("# A\n" + "".join(f"{float(x)!r} {w!r}\n" for x, w in zip(lambdas_a, WEIGHTS, strict=True)))
    return str(path)


def _truth_lambdas():
    lam = np.array(LAMBDAS_A)
    w = np.array(WEIGHTS) / np.sum(WEIGHTS)
    mean = np.sum(w * lam)
    return mean + SCALE * (lam - mean) + SHIFT_A


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """(starting Experiment, noise-free Observation, true scale)."""
    folder = tmp_path_factory.mktemp("fit-spectrum")
    start = nbjax.experiment_from_args(ARGS + ["-spectrum", _spectrum(folder, "start.txt", LAMBDAS_A)], physical=True)
    truth = nbjax.experiment_from_args(
        ARGS + ["-spectrum", _spectrum(folder, "truth.txt", _truth_lambdas())], physical=True
    )
    image = np.asarray(nbjax.render(truth))
    scale = float(PEAK / image.max())
    data = scale * image + BACKGROUND
    return start, nf.Observation(image=data, mask=np.ones(data.shape, bool), name="spectrum"), scale


def test_registered_and_beam_only():
    assert nf.PARAMETERS["spectrum_shift"] is nf.SpectrumShift
    assert nf.PARAMETERS["spectrum_scale"] is nf.SpectrumScale
    assert nf.SpectrumShift.beam_only and nf.SpectrumScale.beam_only
    assert nf.SpectrumScale.positive and not nf.SpectrumShift.positive


def test_apply_moves_the_wavelengths_as_documented(problem):
    start = problem[0]
    lam = np.asarray(start.beam.wavelengths)
    w = np.asarray(start.beam.weights) / np.sum(np.asarray(start.beam.weights))
    mean = np.sum(w * lam)
    shifted = nf.SpectrumShift().apply(start, jnp.asarray(0.01), start)
    np.testing.assert_allclose(np.asarray(shifted.beam.wavelengths), lam + 0.01e-10, rtol=1e-15)
    scaled = nf.SpectrumScale().apply(start, jnp.asarray(1.5), start)
    np.testing.assert_allclose(np.asarray(scaled.beam.wavelengths), mean + 1.5 * (lam - mean), rtol=1e-14)
    # the two commute: the weighted mean moves with the shift, the scale keeps it
    a = nf.SpectrumScale().apply(nf.SpectrumShift().apply(start, 0.01, start), 1.5, start)
    b = nf.SpectrumShift().apply(nf.SpectrumScale().apply(start, 1.5, start), 0.01, start)
    np.testing.assert_allclose(np.asarray(a.beam.wavelengths), np.asarray(b.beam.wavelengths), rtol=1e-14)
    assert nf.SpectrumShift().initial(start) == 0.0 and nf.SpectrumScale().initial(start) == 1.0


def test_gradient_matches_central_differences_and_the_adjoint_equals_the_lm_pass(problem):
    start, obs, scale = problem
    free = [nf.SpectrumShift(), nf.SpectrumScale(), nf.Scale(start=0.9 * scale), nf.Background(start=1.5)]
    p = nf.build_problem(start, obs, free, tile=300)  # several tiles, a padded last one
    assert _source_gradient.eligible(start, p.layouts[0]), "beam-only: the written-out adjoint applies"
    theta = jnp.asarray(p.theta0) + jnp.asarray([0.0011, 0.07, 0.01, -0.02])  # away from the start
    L_adj, g_adj = p.objective.gradient(theta)  # the written-out adjoint (the optax methods' gradient)
    L_lm, g_lm, F = p.objective.normal(theta)  # the Levenberg-Marquardt pass: J^T dl/dm by forward mode
    np.testing.assert_allclose(float(L_adj), float(L_lm), rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(g_adj), np.asarray(g_lm), rtol=1e-9, atol=1e-9 * float(jnp.max(jnp.abs(g_lm)))
    )
    h = 1e-5
    fd = []
    for k in range(theta.size):
        e = np.zeros(theta.size)
        e[k] = h
        f = [float(p.objective.value(theta + c * e)) for c in (2, 1, -1, -2)]
        fd.append((-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h))
    fd = np.array(fd)
    assert np.all(np.abs(fd[:2]) > 1e-3 * np.max(np.abs(fd))), fd  # shift and scale act on the loss
    for g in (g_adj, g_lm):
        np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-5, atol=1e-6 * np.max(np.abs(fd)))
    assert np.all(np.linalg.eigvalsh(np.asarray(F)) > -1e-9 * np.max(np.abs(np.asarray(F))))


@pytest.mark.parametrize("method", ["lm", "lbfgs"])
def test_noise_free_recovery_of_shift_and_scale(method, problem):
    start, obs, scale = problem
    free = [nf.SpectrumShift(), nf.SpectrumScale(), nf.Scale(start=0.9 * scale), nf.Background(start=1.5)]
    solver = nf.LevenbergMarquardt(max_steps=60) if method == "lm" else nf.LBFGS(max_steps=400)
    result = nf.fit(start, obs, free, method=solver)
    assert result.converged, result.message
    truth = {"spectrum_shift": SHIFT_A, "spectrum_scale": SCALE, "scale": scale, "background": BACKGROUND}
    for name, value in truth.items():
        assert abs(result.value(name) - value) <= 1e-6 * abs(value), (name, result.value(name), value)
    np.testing.assert_allclose(
        np.asarray(result.experiments[0].beam.wavelengths), _truth_lambdas() * 1e-10, rtol=1e-8, atol=0
    )
