"""nbjax.fit: recovery of known parameters, the one-pass Jacobian and gradient against
independent computations, error bars, compilation count, refusals, and the ``nbjax fit`` CLI.

Independent references:
* the Jacobian of the fit engine (per-source forward-mode tangents) against ``jax.jacfwd`` of
  the plain model m(theta) = scale sum_s w_s I_s + background;
* the one-pass gradient of the loss against float64 central finite differences (4-point);
* the demo spectrum recovered from noise-free data to 1e-8 relative, and from Poisson data with
  every parameter within 3 standard errors of the truth.
"""

from __future__ import annotations

import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nbjax
import nbjax.fit as nf
from nbjax.errors import NBError
from nbjax.fit import _demo, _engine
from nbjax.fit._fit import _unstarted
from nbjax.io.sourcefile import read_source_file, write_source_file

SOURCES = "-10 0.003 -0.002 1.0 0.99e-10\n-10 -0.001 0.002 2.0 1.0e-10\n-10 0.0 0.004 0.7 1.015e-10\n"
BASE = [
    "-cell",
    "60",
    "70",
    "80",
    "88",
    "93",
    "97",
    "-misset",
    "10",
    "-20",
    "30",
    "-default_F",
    "100",
    "-N",
    "4",
    "-detpixels",
    "24",
    "-pixel",
    "0.4",
    "-distance",
    "50",
    "-oversample",
    "1",
    "-polar",
    "0.7",
]


@pytest.fixture(scope="module")
def sources_exp(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit-sources")
    path = folder / "sources.txt"
    path.write_text(SOURCES)
    return nbjax.experiment_from_args(
        BASE + ["-sourcefile", str(path), "-mosaic", "0.3", "-mosaic_dom", "3"], physical=True
    )


@pytest.fixture(scope="module")
def grid_exp():
    return nbjax.experiment_from_args(
        BASE + ["-divergence", "1.0", "-divsteps", "3", "-dispersion", "2", "-dispsteps", "3", "-square_div"],
        physical=True,
    )


def _problem(exp, params):
    """(layout, theta0, tile data covering every pixel) for one image and these parameters."""
    spans, shapes, theta, off = [], [], [], 0
    for p in params:
        t = np.asarray(p.to_theta(p.initial(exp)))
        spans.append((off, off + t.size))
        shapes.append(t.shape)
        theta.append(t.reshape(-1))
        off += t.size
    layout = _engine.Layout(tuple(params), tuple(spans), tuple(shapes))
    theta = np.concatenate(theta)
    # move away from the starting point so no derivative is at a special value
    theta = theta + 0.01 * np.random.default_rng(1).standard_normal(theta.size)
    n = exp.detector.fpixels * exp.detector.spixels
    fpix = jnp.asarray(np.arange(n) % exp.detector.fpixels, jnp.int32)
    spix = jnp.asarray(np.arange(n) // exp.detector.fpixels, jnp.int32)
    return layout, jnp.asarray(theta), fpix, spix


PARAM_SETS = {
    "sources": lambda: [
        nf.Weights(),
        nf.Wavelengths(),
        nf.SourceAngles(),
        nf.BeamDirection(),
        nf.Scale(),
        nf.Background(start=0.5),
        nf.Distance(),
        nf.BeamCentre(),
        nf.Cell(),
        nf.Misset(),
        nf.CrystalSize(),
        nf.MosaicSpread(spread0=0.3),
    ],
    "grid": lambda: [
        nf.Divergence(hsteps=3, vsteps=3, dispsteps=3, round_div=False),
        nf.Dispersion(dispsteps=3),
        nf.Spectrum(),
        nf.Scale(),
    ],
    # no crystal size: the tangents share dF_latt^2/dh (fit/_tangents.py)
    "geometry": lambda: [
        nf.Weights(),
        nf.Wavelengths(),
        nf.SourceAngles(),
        nf.BeamDirection(),
        nf.Scale(),
        nf.Background(start=0.5),
        nf.Distance(),
        nf.BeamCentre(),
        nf.Cell(),
        nf.Misset(),
        nf.MosaicSpread(spread0=0.3),
    ],
}


@pytest.mark.parametrize("which", sorted(PARAM_SETS))
def test_engine_jacobian_matches_jacfwd(which, sources_exp, grid_exp):
    """Every parameter type: the per-source tangent Jacobian equals jax.jacfwd of the model."""
    exp = grid_exp if which == "grid" else sources_exp
    params = PARAM_SETS[which]()
    layout, theta, fpix, spix = _problem(exp, params)
    S = exp.beam.wavelengths.shape[0]
    tangents = _engine.tangents_for(layout, theta.size, S)
    none = -jnp.ones_like(fpix)  # no pixel has a reflection slot
    m, J = _engine._tile_model_and_jacobian(exp, layout, tangents, theta, fpix, spix, none, jnp.float64)[:2]
    m_ref = _engine._tile_model(exp, layout, theta, fpix, spix, none, jnp.float64)
    J_ref = jax.jacfwd(lambda th: _engine._tile_model(exp, layout, th, fpix, spix, none, jnp.float64))(theta)
    np.testing.assert_allclose(np.asarray(m), np.asarray(m_ref), rtol=1e-12, atol=0)
    scale = np.max(np.abs(np.asarray(J_ref)), axis=0)
    assert np.all(scale > 0), f"a parameter has no effect on the image: {np.nonzero(scale == 0)}"
    np.testing.assert_allclose(np.asarray(J) / scale, np.asarray(J_ref) / scale, rtol=0, atol=1e-10)


@pytest.mark.parametrize("which", sorted(PARAM_SETS))
def test_one_pass_gradient_matches_finite_differences(which, sources_exp, grid_exp):
    """Gradient of the Poisson loss (one pass) against float64 4-point central differences."""
    exp = grid_exp if which == "grid" else sources_exp
    params = PARAM_SETS[which]()
    layout, theta, fpix, spix = _problem(exp, params)
    none = -jnp.ones_like(fpix)  # no pixel has a reflection slot
    m0 = np.asarray(_engine._tile_model(exp, layout, theta, fpix, spix, none, jnp.float64))
    d = np.random.default_rng(2).poisson(m0 * 1.3 + 0.5).astype(np.float64)
    passes = _engine.make_passes(
        (layout,), theta.size, exp.beam.wavelengths.shape[0], nf.Poisson(), jnp.dtype(jnp.float64)
    )
    value, normal = passes.value, passes.normal
    no_box = (-jnp.ones((1, d.size), jnp.int32), jnp.zeros((1, d.size)), jnp.zeros((1, d.size)))  # no shoeboxes
    no_box += (-jnp.ones((1, d.size), jnp.int32),)  # ... and no reflection slots
    ones = jnp.ones_like(fpix, bool)[None]
    tiles = ((fpix[None], spix[None], ones, jnp.asarray(d)[None], jnp.ones((1, d.size)), *no_box),)
    L, g, F = normal(theta, (exp,), tiles)
    np.testing.assert_allclose(float(L), float(value(theta, (exp,), tiles)), rtol=1e-12)
    h = 1e-5  # theta units (A, mrad, mm, deg, log): truncation and rounding both below ~1e-5 here
    fd = []
    for k in range(theta.size):
        e = np.zeros(theta.size)
        e[k] = h
        f = [float(value(theta + c * e, (exp,), tiles)) for c in (2, 1, -1, -2)]
        fd.append((-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * h))
    fd = np.array(fd)
    np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-4, atol=1e-4 * np.max(np.abs(fd)))
    assert np.all(np.linalg.eigvalsh(np.asarray(F)) > -1e-9 * np.max(np.abs(np.asarray(F)))), (
        "Fisher matrix must be positive semi-definite"
    )


def test_noise_free_recovery_to_1e_8():
    start, obs, free, truth = _demo.problem(noise=False)
    result = nf.fit(start, obs, free)
    assert result.converged, result.message
    for name, value in truth.items():
        assert abs(result.value(name) - value) <= 1e-8 * abs(value) + (1e-10 if name == "background" else 0.0), (
            name,
            result.value(name),
            value,
        )


def test_poisson_recovery_within_three_sigma_and_one_compilation():
    start, obs, free, truth = _demo.problem(seed=3)
    result = nf.fit(start, obs, free, method=nf.LevenbergMarquardt(max_steps=40))
    assert result.converged, result.message
    for name, value in truth.items():
        pull = (result.value(name) - value) / result.error(name)
        assert abs(pull) < 3.0, (name, result.value(name), value, result.error(name))
    # one compiled Fisher/gradient pass, whatever the number of steps (and reused by later fits)
    S = start.beam.wavelengths.shape[0]
    layouts = _engine.make_passes.cache_info()
    normal = [f for f in _cached_normals(S)]
    assert normal and all(f._cache_size() == 1 for f in normal), layouts
    assert len(result.loss_history) > 3
    assert np.all(np.diff(result.loss_history) <= 1e-9 * abs(result.loss_history[0]))  # LM only accepts decreases


def _cached_normals(S):
    # make_passes is an lru_cache: call it with the demo's layout again to get the same object
    start, obs, free, _ = _demo.problem(seed=3)
    spans, shapes, off = [], [], 0
    for p in free:
        t = np.asarray(p.to_theta(p.initial(start)))
        spans.append((off, off + t.size))
        shapes.append(t.shape)
        off += t.size
    layout = _unstarted(_engine.Layout(tuple(free), tuple(spans), tuple(shapes)))  # the passes do not hold starts
    yield _engine.make_passes((layout,), off, S, nf.Poisson(), jnp.dtype(jnp.float64)).normal


def test_lbfgs_reaches_the_lm_optimum():
    start, obs, free, _ = _demo.problem(seed=4)
    lm = nf.fit(start, obs, free)
    lb = nf.fit(start, obs, free, method=nf.LBFGS(max_steps=200))
    assert lb.converged, lb.message
    assert lb.loss_history[-1] <= lm.loss_history[-1] + 1e-3
    np.testing.assert_allclose(lb.values, lm.values, rtol=0, atol=0.05 * np.max(lm.stderr) + 0.2 * lm.stderr.max())


def test_joint_fit_with_per_image_scale():
    start, obs, free, truth = _demo.problem(noise=False)
    obs2 = nf.Observation(
        image=np.asarray(obs.image) * 0.5 + 1.0, mask=obs.mask, name="half"
    )  # half the scale, same background+1
    shared = [p for p in free if p.name in ("weight", "wavelength")]
    result = nf.fit(start, [obs, obs2], shared, per_image=[nf.Scale(start=0.07), nf.Background()])
    assert result.converged
    s1, s2 = result.value("scale@demo"), result.value("scale@half")
    assert abs(s2 / s1 - 0.5) < 1e-7
    assert abs(result.value("background@half") - (0.5 * 2.0 + 1.0)) < 1e-6
    for i in range(5):
        assert abs(result.value(f"weight[{i}]") - truth[f"weight[{i}]"]) < 1e-7


def test_c_compatible_and_bad_weights_refused(tmp_path):
    exp_c = nbjax.experiment_from_args(
        ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "16"]
    )
    obs = nf.Observation(image=np.ones((16, 16)), mask=np.ones((16, 16), bool))
    with pytest.raises(NBError, match="freeing source weights in C-compatible mode"):
        nf.fit(exp_c, obs, [nf.Weights()])
    exp_p = nbjax.experiment_from_args(
        ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "16"],
        physical=True,
    )
    bad = eqx.tree_at(lambda e: e.beam.weights, exp_p, jnp.asarray([-1.0]))
    with pytest.raises(NBError, match="weights must be >= 0"):
        nf.fit(bad, obs, [nf.Scale()])


def test_source_file_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(5)
    d = rng.standard_normal((4, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    w = rng.random(4)
    lam = 1e-10 * (1 + 0.01 * rng.standard_normal(4))
    write_source_file(tmp_path / "s.txt", d, w, lam)
    table = read_source_file(tmp_path / "s.txt")
    np.testing.assert_array_equal(table[:, :3], d * 10.0)
    np.testing.assert_array_equal(table[:, 3], w)
    np.testing.assert_array_equal(table[:, 4], lam)


def test_cli_fit_demo_writes_every_output(tmp_path):
    import io

    from nbjax.cli.main import run

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = run(["fit", "-demo", "-seed", "7"], out=out, err=err)
    finally:
        os.chdir(cwd)
    assert code == 0, err.getvalue()
    for name in ("fitted_sources.txt", "fit.json", "fit_report.png", "model.bin", "residual.bin"):
        assert (tmp_path / name).stat().st_size > 0, name
    doc = json.loads((tmp_path / "fit.json").read_text())
    assert doc["converged"] and doc["command"][:3] == ["nbjax", "fit", "-demo"]
    params = {p["name"]: p for p in doc["parameters"]}
    for name, value in doc["truth"].items():
        assert abs(params[name]["value"] - value) < 4 * params[name]["stderr"], name
    table = read_source_file(tmp_path / "fitted_sources.txt")
    np.testing.assert_allclose(table[:, 3], [params[f"weight[{i}]"]["value"] for i in range(5)], rtol=1e-15)
    np.testing.assert_allclose(table[:, 4] * 1e10, [params[f"wavelength[{i}]"]["value"] for i in range(5)], rtol=1e-14)
    assert "nbjax: fit step 1:" in err.getvalue() and "ignores source weights" in err.getvalue()
    assert "truth vs fitted" in out.getvalue()


def test_reverse_mode_gradient_pass_equals_forward_mode_pass(sources_exp):
    """The optax methods' gradient (reverse mode per tile) equals the LM pass's J^T dl/dm."""
    params = PARAM_SETS["sources"]()
    m0 = np.asarray(nbjax.render(sources_exp))
    obs = nf.Observation(
        image=np.random.default_rng(3).poisson(m0 * 50 + 1.0).astype(float), mask=np.ones(m0.shape, bool)
    )
    p = nf.build_problem(sources_exp, obs, params, tile=100)  # several tiles, a padded last one
    theta = jnp.asarray(p.theta0) + 0.01
    L1, g1 = p.objective.gradient(theta)
    L2, g2, _ = p.objective.normal(theta)
    np.testing.assert_allclose(float(L1), float(L2), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), rtol=1e-9, atol=1e-9 * float(jnp.max(jnp.abs(g2))))


def test_joint_fit_vmapped_images_equal_the_loop(monkeypatch):
    """Three images of one static shape go through one vmapped pass; forcing the per-image loop
    gives the same loss, gradient and Fisher matrix."""
    start, obs, free, _ = _demo.problem(noise=False)
    rng = np.random.default_rng(8)
    mask2 = np.asarray(obs.mask).copy()
    mask2[:40] = False  # a different pixel count: padded tiles
    images = [
        obs,
        nf.Observation(image=np.asarray(obs.image) * 0.7, mask=mask2, name="b"),
        nf.Observation(image=rng.poisson(np.asarray(obs.image)).astype(float), mask=obs.mask, name="c"),
    ]
    shared = [p for p in free if p.name in ("weight", "wavelength")]
    per = [nf.Scale(start=0.07), nf.Background()]
    p = nf.build_problem(start, images, shared, per_image=per)
    theta = jnp.asarray(p.theta0) + 0.003
    vm = p.objective.normal(theta)
    assert (
        _engine._canonical(tuple(p.layouts), 5) is not None
        and _engine._same_shapes(p.packed)
        and _engine._same_shapes(p.objective.refs)
    )
    monkeypatch.setattr(_engine, "_canonical", lambda layouts, n: None)
    _engine.make_passes.cache_clear()
    q = nf.build_problem(start, images, shared, per_image=per)
    loop = q.objective.normal(theta)
    _engine.make_passes.cache_clear()
    for a, b in zip(vm, loop, strict=True):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(b), rtol=1e-11, atol=1e-11 * float(np.max(np.abs(np.asarray(b))))
        )


def test_background_towards_zero_converges_and_poisson_refuses_nonpositive_models():
    """Sparse data with no background: the non-negative background goes to 0 and the other
    values equal the fit without a background; a model pixel <= 0 has an infinite Poisson loss."""
    start, obs, free, truth = _demo.problem(noise=False)
    sparse = nf.Observation(
        image=np.random.default_rng(9).poisson(np.maximum(np.asarray(obs.image) - 2.0, 0.0) * 0.01).astype(float),
        mask=obs.mask,
    )
    shared = [p for p in free if p.name in ("weight", "scale")]
    with_bg = nf.fit(start, sparse, shared + [nf.Background()])
    without = nf.fit(start, sparse, shared)
    assert with_bg.converged and without.converged
    mean = float(np.mean(np.asarray(sparse.image)))
    assert with_bg.value("background") < 0.01 * mean, (with_bg.value("background"), mean)
    for i in range(5):
        assert abs(with_bg.value(f"weight[{i}]") - without.value(f"weight[{i}]")) < 0.2 * without.error(f"weight[{i}]")
    l, _, _ = nf.Poisson().terms(jnp.asarray([-1.0, 0.0, 2.0]), jnp.asarray([1.0, 0.0, 2.0]), 1.0)
    assert np.isinf(np.asarray(l)[:2]).all() and np.asarray(l)[2] == 0.0


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (3.0, 5.0)], ids=["truth-above", "truth-below"])
def test_value_at_its_bound_reports_no_error_bar(bounds, tmp_path):
    """Truth outside the bounds (background 2): the fit pushes the value onto a bound, where the
    sigmoid's derivative (hi - lo) s (1 - s) is ~0 and G F^-1 G^T would give an error bar of ~0.
    It is reported as at bound: NaN from error(), null with at_bound true in as_dict and fit.json,
    'at bound' in the table; a bounded value inside its bounds keeps its error bar."""
    from nbjax.fit._report import report_png, write_outputs

    cubic = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "24"]
    exp = nbjax.experiment_from_args(cubic + ["-pixel", "0.4", "-oversample", "1"], physical=True)
    image = np.asarray(nbjax.render(exp))
    data = 300.0 * image / image.max() + 2.0
    obs = nf.Observation(image=data, mask=np.ones(data.shape, bool), name="bounded")
    lo, hi = bounds
    result = nf.fit(exp, obs, [nf.Scale(bounds=(1e-3, 10.0)), nf.Background(bounds=bounds, start=0.5 * (lo + hi))])
    assert result.converged, result.message
    edge = hi if hi < 2.0 else lo  # the bound nearest the truth
    assert abs(result.value("background") - edge) <= 1e-6 * (hi - lo)  # sigmoid within 1e-6 of 0 or 1
    assert np.isnan(result.error("background")), result.error("background")  # was 0: a meaningless error bar
    assert result.at_bound.tolist() == [False, True]
    assert np.isfinite(result.error("scale")) and result.error("scale") > 1e-6 * result.value("scale")
    params = {p["name"]: p for p in result.as_dict()["parameters"]}
    assert params["background"]["stderr"] is None and params["background"]["at_bound"] is True
    assert params["scale"]["at_bound"] is False and params["scale"]["stderr"] == result.error("scale")
    row = next(line for line in str(result).splitlines() if line.startswith("background"))
    assert row.split()[3:5] == ["at", "bound"], str(result)
    write_outputs(result, str(tmp_path), {}, ("s.txt", "fit.json", "r.png"), report=False, warn=lambda text: None)
    text = (tmp_path / "fit.json").read_text()
    assert "NaN" not in text
    doc = json.loads(text)
    assert [(p["name"], p["at_bound"], p["stderr"] is None) for p in doc["parameters"]] == [
        ("scale", False, False),
        ("background", True, True),
    ]
    png = report_png(result, [data])
    assert png is None or png.startswith(b"\x89PNG")


SOURCE_ONLY = {
    "sources": lambda: [
        nf.Weights(),
        nf.Wavelengths(),
        nf.SourceAngles(),
        nf.BeamDirection(),
        nf.Scale(),
        nf.Background(start=0.5),
    ],
    "grid": lambda: [
        nf.Divergence(hsteps=3, vsteps=3, dispsteps=3, round_div=False),
        nf.Dispersion(dispsteps=3),
        nf.Spectrum(),
        nf.Scale(),
    ],
}
SOURCE_EXTRA = {  # model variations the written-out adjoint must follow (on the "sources" experiment)
    "plain": [],
    "nopolar-round-dmin": ["-nopolar", "-round_xtal", "-dmin", "2.2"],
    "gauss-thick-oversample": [
        "-gauss_xtal",
        "-oversample",
        "2",
        "-detector_thick",
        "100",
        "-detector_abs",
        "300",
        "-thicksteps",
        "2",
    ],
    "kahn-degenerate-water": ["-polar", "1", "-polar_vector", "1", "0", "0", "-water", "50"],
}


@pytest.mark.parametrize(("which", "extra"), [("grid", "plain")] + [("sources", e) for e in sorted(SOURCE_EXTRA)])
def test_source_adjoint_equals_the_forward_mode_pass(which, extra, tmp_path):
    """Beam-only parameters take the written-out adjoint of fit/_source_gradient.py; its loss
    and gradient equal the forward-mode pass's J^T dl/dm (itself checked against central
    differences above) for every lattice shape, polarization, dmin, layers and oversampling."""
    from nbjax.fit import _source_gradient

    if which == "sources":
        path = tmp_path / "sources.txt"
        path.write_text(SOURCES)
        args = BASE + ["-sourcefile", str(path), "-mosaic", "0.3", "-mosaic_dom", "3"]
    else:
        args = BASE + ["-divergence", "1.0", "-divsteps", "3", "-dispersion", "2", "-dispsteps", "3", "-square_div"]
    exp = nbjax.experiment_from_args(args + SOURCE_EXTRA[extra], physical=True)
    params = SOURCE_ONLY[which]()
    m0 = np.asarray(nbjax.render(exp))
    obs = nf.Observation(
        image=np.random.default_rng(4).poisson(m0 / m0.max() * 200 + 1.0).astype(float), mask=np.ones(m0.shape, bool)
    )
    p = nf.build_problem(exp, obs, params, tile=100)  # several tiles, a padded last one
    assert _source_gradient.eligible(exp, p.layouts[0]), "these parameters must take the written-out adjoint"
    theta = jnp.asarray(p.theta0) + 0.01 * jnp.asarray(np.random.default_rng(5).standard_normal(np.size(p.theta0)))
    L1, g1 = p.objective.gradient(theta)
    L2, g2, _ = p.objective.normal(theta)
    assert np.isfinite(float(L1)) and np.all(np.isfinite(np.asarray(g1)))
    np.testing.assert_allclose(float(L1), float(L2), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), rtol=1e-9, atol=1e-9 * float(jnp.max(jnp.abs(g2))))


def test_source_adjoint_not_used_where_it_does_not_apply(sources_exp):
    """Detector or crystal parameters, or the C-compatible model, keep reverse mode."""
    from nbjax.fit import _source_gradient

    layout = _engine.Layout((nf.Wavelengths(), nf.Distance()), ((0, 3), (3, 4)), ((3,), ()))
    assert not _source_gradient.eligible(sources_exp, layout)
    beam_only = _engine.Layout((nf.Wavelengths(), nf.Scale()), ((0, 3), (3, 4)), ((3,), ()))
    assert _source_gradient.eligible(sources_exp, beam_only)
    c_model = nbjax.experiment_from_args(BASE + ["-default_F", "100"])
    assert not _source_gradient.eligible(c_model, beam_only)


@pytest.mark.parametrize("extra", sorted(SOURCE_EXTRA))
def test_shared_lattice_tangents_match_jacfwd(extra, tmp_path):
    """The Jacobian with dF_latt^2/dh shared by the tangents (fit/_tangents.py) equals
    jax.jacfwd of the model for detector, crystal, mosaic and source parameters together, on
    every lattice shape, polarization, dmin, layers and oversampling variant."""
    from nbjax.fit import _tangents

    path = tmp_path / "sources.txt"
    path.write_text(SOURCES)
    exp = nbjax.experiment_from_args(
        BASE + ["-sourcefile", str(path), "-mosaic", "0.3", "-mosaic_dom", "3"] + SOURCE_EXTRA[extra], physical=True
    )
    params = PARAM_SETS["geometry"]()
    if exp.crystal.shape == "gauss":  # G uses a*, b*, c*: the cell then takes plain forward mode
        params = [p for p in params if not isinstance(p, nf.Cell)]
    layout, theta, fpix, spix = _problem(exp, params)
    assert _tangents.eligible(exp, layout)
    tangents = _engine.tangents_for(layout, theta.size, exp.beam.wavelengths.shape[0])
    none = -jnp.ones_like(fpix)  # no pixel has a reflection slot
    m, J = _engine._tile_model_and_jacobian(exp, layout, tangents, theta, fpix, spix, none, jnp.float64)[:2]
    J_ref = jax.jacfwd(lambda th: _engine._tile_model(exp, layout, th, fpix, spix, none, jnp.float64))(theta)
    assert np.all(np.isfinite(np.asarray(m))) and np.all(np.isfinite(np.asarray(J)))
    m_ref = _engine._tile_model(exp, layout, theta, fpix, spix, none, jnp.float64)
    np.testing.assert_allclose(np.asarray(m), np.asarray(m_ref), rtol=1e-12, atol=0)
    scale = np.max(np.abs(np.asarray(J_ref)), axis=0)
    assert np.all(scale > 0)
    np.testing.assert_allclose(np.asarray(J) / scale, np.asarray(J_ref) / scale, rtol=0, atol=1e-10)


def test_cli_fit_help_lists_the_registries():
    """``nbjax fit -h`` prints its usage, whose names come from nbjax.fit's registries."""
    import io

    from nbjax.cli.main import run

    for flag in ("-h", "--help"):
        out = io.StringIO()
        assert run(["fit", flag], out=out, err=io.StringIO()) == 0
        text = out.getvalue()
        assert text.startswith("``nbjax fit``")
        names = text.split("Parameter names")[1]
        assert all(name in names for name in nf.PARAMETERS)
        assert "poisson, gaussian" in text and "lm, lbfgs, adam" in text


def test_cli_fit_parameter_names_come_from_the_registry(tmp_path):
    """Every registered name builds its class (case ignored, aliases too); an unknown name is
    refused in one line naming the flag and the registry's names."""
    from nbjax.cli.fit import _parameters
    from nbjax.settings import RunSettings

    settings = RunSettings(physical=True)
    settings.mosaic_spread = np.radians(0.5)
    for name, cls in nf.PARAMETERS.items():
        if name == "background_planes":  # made by the shoebox fit, which knows the shoeboxes
            with pytest.raises(NBError, match="-free: background_planes needs shoeboxes"):
                _parameters("-free", name, settings)
            continue
        (p,) = _parameters("-free", name.upper(), settings)
        assert type(p) is cls
    assert type(_parameters("-free", "beam_center", settings)[0]) is nf.BeamCentre
    assert nf.parameter("mosaic", settings).spread0 == pytest.approx(0.5)
    with pytest.raises(NBError) as info:
        _parameters("-per_image", "scale,nope", settings)
    assert str(info.value) == f"-per_image: unknown fit parameter 'nope' (known: {', '.join(nf.PARAMETERS)})"


def test_nberror_is_a_value_error():
    assert issubclass(NBError, ValueError)
