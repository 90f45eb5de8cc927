"""jax.grad of the rendered image against float64 finite differences, and at singular points.

Loss: L = sum(image * W) with W fixed uniform random weights (seed 0).  Finite differences use
the fourth-order central stencil (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h, one
component at a time, in float64.  Step sizes were chosen per parameter so that truncation
and rounding errors are both below ~1e-8 relative (measured: 1e-10 .. 4e-8):

    source directions   1e-6   (unit vectors; render normalises them, so the radial
                                component of the gradient is 0)
    wavelengths         1e-15 m (1e-5 relative)
    detector distance   1e-7 m  (~2e-6 relative)
    Kahn factor         0.05    (the image is linear in it)
    cell a, b, c        1e-5 A;  cell angles 1e-5 rad
    misset angles       1e-5 rad

Agreement criterion: max|grad - fd| <= RTOL * max|fd| over the components of one parameter.

The singular-point tests put the direct beam exactly on a pixel centre (MOSFLM: Ybeam/Xbeam =
an integer number of pixels, so F = S = pixel centre and the diffracted ray equals the
incident one), where 2theta = 0, the Miller index h = 0 exactly (the grating function's 0/0),
the polarization azimuth is undefined, and with -round_xtal sinc3 is evaluated at 0.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nbjax
from nbjax.io.cformat import RTD
from nbjax.physics.lattice import grating_sq, grating_sq_and_derivative, lattice_sq, sinc3_of_sq
from nbjax.samples import pixel_samples

RTOL = 1e-6

CELL_DEG = (70.0, 80.0, 90.0, 85.0, 95.0, 100.0)
MISSET_DEG = (3.0, -5.0, 7.0)
CELL0 = np.array(CELL_DEG[:3] + tuple(x / RTD for x in CELL_DEG[3:]))  # A, rad (as the CLI converts)
MISSET0 = np.array([x / RTD for x in MISSET_DEG])

# two sources a few mrad off the MOSFLM beam (+x), different wavelengths (m)
SOURCES = "-10 0.02 -0.01 1 1.0e-10\n-10 -0.015 0.025 1 1.03e-10\n"

STEPS = {
    "directions": 1e-6,
    "wavelengths": 1e-15,
    "distance": 1e-7,
    "kahn": 0.05,
    "cell": 1e-5,
    "misset": 1e-5,
    "weights": 1e-4,
}


def generic_args(sourcefile):
    cell = [f"{x:g}" for x in CELL_DEG]
    misset = [f"{x:g}" for x in MISSET_DEG]
    return [
        "-cell",
        *cell,
        "-misset",
        *misset,
        "-default_F",
        "100",
        "-Na",
        "3",
        "-Nb",
        "4",
        "-Nc",
        "5",
        "-detpixels",
        "20",
        "-pixel",
        "0.5",
        "-distance",
        "40",
        "-lambda",
        "1",
        "-oversample",
        "1",
        "-polar",
        "0.5",
        "-sourcefile",
        str(sourcefile),
    ]


def weights_for(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).random(shape))


def build(exp, p):
    """exp with the parameters in p (any subset of the keys of STEPS) substituted."""
    if "cell" in p:
        lat = nbjax.lattice_from_cell(p["cell"], p["misset"], xp=jnp)
        exp = eqx.tree_at(lambda e: (e.crystal.a, e.crystal.b, e.crystal.c), exp, (lat.a, lat.b, lat.c))
    leaves = {
        "directions": lambda e: e.beam.directions,
        "wavelengths": lambda e: e.beam.wavelengths,
        "distance": lambda e: e.detector.distance,
        "kahn": lambda e: e.beam.kahn,
        "weights": lambda e: e.beam.weights,
    }
    for name, where in leaves.items():
        if name in p:
            exp = eqx.tree_at(where, exp, p[name])
    return exp


def base_params(exp, cell=None, misset=None, names=("directions", "wavelengths", "distance", "kahn")):
    leaves = {
        "directions": exp.beam.directions,
        "wavelengths": exp.beam.wavelengths,
        "distance": exp.detector.distance,
        "kahn": exp.beam.kahn,
        "weights": exp.beam.weights,
    }
    p = {k: jnp.asarray(leaves[k]) for k in names}
    if cell is not None:
        p["cell"] = jnp.asarray(cell)
        p["misset"] = jnp.asarray(misset)
    return p


def central_fd(loss, p0, name, h):
    """Fourth-order central differences of loss w.r.t. every component of p0[name]."""
    x0 = np.asarray(p0[name], dtype=np.float64)
    out = np.zeros_like(x0)
    for idx in np.ndindex(x0.shape):
        vals = []
        for k in (2, 1, -1, -2):
            x = x0.copy()
            x[idx] += k * h
            vals.append(float(loss({**p0, name: jnp.asarray(x)})))
        out[idx] = (-vals[0] + 8.0 * vals[1] - 8.0 * vals[2] + vals[3]) / (12.0 * h)
    return out


def assert_matches_fd(ad, fd, name, rtol=RTOL):
    ad = np.asarray(ad, dtype=np.float64)
    assert np.all(np.isfinite(ad)), f"{name}: gradient not finite: {ad}"
    scale = np.max(np.abs(fd))
    assert scale > 0, f"{name}: finite differences are all zero; the test geometry does not exercise it"
    err = np.max(np.abs(ad - fd)) / scale
    assert err <= rtol, (
        f"{name}: jax.grad {ad.ravel()} vs central FD {fd.ravel()}: relative error {err:.3g} > rtol {rtol:g}"
    )


# ---------------------------------------------------------------------------------------------
# generic geometry: every parameter against finite differences


@pytest.fixture(scope="module")
def generic(tmp_path_factory):
    src = tmp_path_factory.mktemp("grad") / "sources.txt"
    src.write_text(SOURCES)
    exp = nbjax.experiment_from_args(generic_args(src))
    W = weights_for((exp.detector.spixels, exp.detector.fpixels))
    p0 = base_params(exp, CELL0, MISSET0)

    def loss(p):
        return jnp.sum(nbjax.render(build(exp, p), dtype=jnp.float64) * W)

    grad = jax.grad(loss)(p0)
    return exp, loss, p0, grad


def test_lattice_from_cell_reproduces_cli_lattice(generic):
    """The differentiable path (lattice_from_cell in jnp) gives the CLI's cell vectors."""
    exp = generic[0]
    lat = nbjax.lattice_from_cell(jnp.asarray(CELL0), jnp.asarray(MISSET0), xp=jnp)
    for got, want in ((lat.a, exp.crystal.a), (lat.b, exp.crystal.b), (lat.c, exp.crystal.c)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=0, atol=1e-12 * float(jnp.linalg.norm(want)))
    recip = jnp.stack([lat.a_star, lat.b_star, lat.c_star])
    np.testing.assert_allclose(np.asarray(recip), np.asarray(exp.model.recip), rtol=0, atol=1e-14)
    # the physical reciprocal cell is the exact dual of the real one: a*.a = 1, a*.b = 0, ...
    real = np.stack([np.asarray(v) for v in (exp.crystal.a, exp.crystal.b, exp.crystal.c)]) * 1e10
    np.testing.assert_allclose(np.asarray(exp.crystal.recip) @ real.T, np.eye(3), rtol=0, atol=1e-13)


def test_generic_image_has_signal(generic):
    exp, loss, p0, _ = generic
    img = np.asarray(nbjax.render(exp))
    assert np.count_nonzero(img > 0.1 * img.max()) >= 5, "test geometry should show several spots"
    assert float(loss(p0)) > 0


@pytest.mark.parametrize("name", ["directions", "wavelengths", "distance", "kahn", "cell", "misset"])
def test_gradient_matches_finite_differences(generic, name):
    exp, loss, p0, grad = generic
    fd = central_fd(loss, p0, name, STEPS[name])
    assert_matches_fd(grad[name], fd, name)


def test_direction_gradient_is_tangential(generic):
    """render normalises source directions, so d L / d direction is orthogonal to the direction."""
    exp, _, p0, grad = generic
    d = np.asarray(p0["directions"])
    g = np.asarray(grad["directions"])
    radial = np.abs(np.sum(d * g, axis=1))
    assert np.all(radial <= 1e-9 * np.max(np.abs(g))), radial


def test_kahn_gradient_matters(generic):
    """With -polar 0.5 and 2theta up to ~0.2 rad the Kahn factor changes the image measurably."""
    _, loss, p0, grad = generic
    assert abs(float(grad["kahn"])) > 1e-4 * abs(float(loss(p0)))


def test_physical_mode_weights_and_wavelengths(tmp_path):
    """physical=True honours source weights: their gradient also matches finite differences."""
    src = tmp_path / "sources.txt"
    src.write_text("-10 0.02 -0.01 0.7 1.0e-10\n-10 -0.015 0.025 1.6 1.03e-10\n")
    exp = nbjax.experiment_from_args(generic_args(src), physical=True)
    W = weights_for((exp.detector.spixels, exp.detector.fpixels), seed=1)
    p0 = base_params(exp, names=("weights", "wavelengths", "directions"))

    def loss(p):
        return jnp.sum(nbjax.render(build(exp, p)) * W)

    grad = jax.grad(loss)(p0)
    for name in ("weights", "wavelengths", "directions"):
        assert_matches_fd(grad[name], central_fd(loss, p0, name, STEPS[name]), f"physical {name}")
    # weights are normalised: scaling them all leaves the image alone, so grad . w = 0
    w = np.asarray(p0["weights"])
    assert abs(np.dot(np.asarray(grad["weights"]), w)) <= 1e-9 * np.max(np.abs(grad["weights"])) * np.sum(np.abs(w))


# ---------------------------------------------------------------------------------------------
# singular points: direct beam exactly on a pixel centre

SING_PIXEL = (8, 8)  # (slow, fast)
SHAPES = {"square": [], "round": ["-round_xtal"], "gauss": ["-gauss_xtal"]}


def singular_args(shape):
    # The distance (47 mm, not 50) keeps every pixel away from half-integer h, where the round and
    # gauss shapes have kinks (h - round(h) flips sign) that finite differences cannot follow.
    # MOSFLM: Fbeam = Ybeam + pixel/2 and Sbeam = Xbeam + pixel/2, so Xbeam = Ybeam = 8 pixels
    # puts the beam on the centre of pixel (8, 8).
    return [
        "-cell",
        "100",
        "100",
        "100",
        "90",
        "90",
        "90",
        "-default_F",
        "100",
        "-N",
        "4",
        "-detpixels",
        "16",
        "-pixel",
        "0.125",
        "-Xbeam",
        "1.0",
        "-Ybeam",
        "1.0",
        "-distance",
        "47",
        "-lambda",
        "1",
        "-oversample",
        "1",
        "-polar",
        "0.5",
        *SHAPES[shape],
    ]


@pytest.fixture(scope="module", params=list(SHAPES))
def singular(request):
    shape = request.param
    # Round crystals in C-compatible mode use C's sinc3 formula, which cancels to 0 within ~1e-8
    # of the peak (a C quirk nbjax reproduces); the smooth form, differentiable through the peak,
    # is the physical mode's.
    exp = nbjax.experiment_from_args(singular_args(shape), physical=shape == "round")
    W = weights_for((exp.detector.spixels, exp.detector.fpixels), seed=2)
    s, f = SING_PIXEL

    def loss(p):
        img = nbjax.render(build(exp, p))
        return img[s, f] + jnp.sum(img * W)

    p0 = base_params(exp, [100.0, 100.0, 100.0, np.pi / 2, np.pi / 2, np.pi / 2], [0.0, 0.0, 0.0])
    return shape, exp, loss, p0, jax.grad(loss)(p0)


def test_singular_pixel_is_exact(singular):
    """Precondition: at the chosen pixel h = k = l = 0 exactly and the image peaks there."""
    shape, exp, *_ = singular
    s, f = SING_PIXEL
    samples = pixel_samples(exp, np.array([f]), np.array([s]), jnp.float64)
    hkl = np.asarray(samples.hkl).reshape(-1, 3)
    assert np.all(hkl == 0.0), hkl
    img = np.asarray(nbjax.render(exp))
    assert np.unravel_index(np.argmax(img), img.shape) == SING_PIXEL


def test_singular_gradients_finite(singular):
    shape, exp, loss, p0, grad = singular
    for name, g in grad.items():
        assert np.all(np.isfinite(np.asarray(g))), (
            f"{shape}: d loss / d {name} is not finite at the 2theta = 0 pixel: {g}"
        )


@pytest.mark.parametrize("name", ["directions", "wavelengths", "distance", "cell"])
def test_singular_gradients_match_fd(singular, name):
    """Finite is not enough: the gradient through the singular pixel is also the right one."""
    shape, exp, loss, p0, grad = singular
    assert_matches_fd(grad[name], central_fd(loss, p0, name, STEPS[name]), f"{shape} {name}")


def test_singular_pixel_alone(singular):
    """d image[beam pixel] / d(wavelength, direction, Kahn) is 0 (h = 0 is a maximum, sin^2 2theta = 0);
    only the solid angle depends on the distance."""
    shape, exp, *_ = singular
    s, f = SING_PIXEL
    p0 = base_params(exp)
    grad = jax.grad(lambda p: nbjax.render(build(exp, p))[s, f])(p0)
    value = float(nbjax.render(exp)[s, f])
    for name in ("directions", "wavelengths", "kahn"):
        g = np.asarray(grad[name])
        assert np.all(np.isfinite(g)), (shape, name, g)
        scale = value / np.max(np.abs(np.asarray(p0[name])))  # d value / d x for a 100% change
        assert np.all(np.abs(g) <= 1e-9 * scale), (shape, name, g)
    # omega = pixel^2 / D^2 at the beam spot: d value / dD = -2 value / D
    D = float(exp.detector.distance)
    np.testing.assert_allclose(float(grad["distance"]), -2.0 * value / D, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# the lattice transforms themselves at exact integers


@pytest.mark.parametrize("shape", ["square", "round", "gauss", "tophat"])
@pytest.mark.parametrize("hkl", [(0.0, 0.0, 0.0), (1.0, -2.0, 3.0), (7.0, 0.0, -1.0)])
def test_lattice_sq_at_integer_hkl(shape, hkl):
    N = jnp.array([3.0, 4.0, 5.0])
    recip = jnp.array([[0.01, 0.0, 0.0], [0.001, 0.012, 0.0], [0.0005, -0.002, 0.009]])

    def f(h):
        return lattice_sq(h, N, shape, jnp.asarray(1.0), recip)

    h = jnp.asarray(hkl)
    value = float(f(h))
    expected = {"square": 60.0**2, "round": (60.0 * 0.723601254558268) ** 2, "gauss": 60.0**2, "tophat": 60.0**2}[shape]
    np.testing.assert_allclose(value, expected, rtol=1e-14)
    g = np.asarray(jax.grad(f)(h))
    assert np.all(np.isfinite(g)), (shape, hkl, g)
    assert np.all(np.abs(g) <= 1e-9 * value), (shape, hkl, g)  # a maximum


def test_grating_and_sinc3_derivatives_at_zero():
    N = jnp.asarray(5.0)
    for h in (0.0, 1.0, -3.0):
        assert float(jax.grad(grating_sq)(jnp.asarray(h), N)) == 0.0
        np.testing.assert_allclose(
            float(jax.grad(jax.grad(grating_sq))(jnp.asarray(h), N)),
            -2.0 * np.pi**2 * 25.0 * (25.0 - 1.0) / 3.0,
            rtol=1e-10,
        )
    np.testing.assert_allclose(float(jax.grad(sinc3_of_sq)(jnp.asarray(0.0))), -0.1, rtol=1e-14)


@pytest.mark.parametrize("N", [1.0, 2.0, 5.0, 7.0, 50.0])
def test_grating_closed_form_derivative(N):
    """``grating_sq_and_derivative`` (the fit's lattice derivative) against an independent
    float64 formula, (r^2)' = 2 r pi [N cos(pi N d) sin(pi d) - sin(pi N d) cos(pi d)] / sin^2(pi d)
    with r = sin(pi N d)/sin(pi d), away from d = 0, and its series -2 pi^2 N^2 (N^2 - 1) d / 3
    next to it; the value is ``grating_sq``'s bit for bit; finite at d = 0, the zeros of the
    grating and the ends of the reduced range; float32 stays float32 (NumPy float64 polynomial
    coefficients once promoted the single-precision lattice to float64)."""
    rng = np.random.default_rng(3)
    d = np.concatenate(
        [rng.uniform(-0.5, 0.5, 4000), [0.5, -0.5, 0.4999, 1.0 / N, 0.5 / N, 0.5 / N + 1e-12, 2.0 / N - 1e-13]]
    )
    d = d[np.abs(d) <= 0.5]
    value, slope = grating_sq_and_derivative(jnp.asarray(d), jnp.asarray(N))
    np.testing.assert_array_equal(np.asarray(value), np.asarray(grating_sq(jnp.asarray(d), jnp.asarray(N))))
    far = np.abs(d) > 1e-2
    x = np.pi * d[far]
    r = np.sin(N * x) / np.sin(x)
    expected = 2.0 * r * np.pi * (N * np.cos(N * x) * np.sin(x) - np.sin(N * x) * np.cos(x)) / np.sin(x) ** 2
    np.testing.assert_allclose(np.asarray(slope)[far], expected, rtol=1e-9, atol=1e-11 * N**4)
    small = np.array([0.0, 1e-12, -3e-9, 1e-7])
    v0, s0 = grating_sq_and_derivative(jnp.asarray(small), jnp.asarray(N))
    np.testing.assert_allclose(
        np.asarray(s0), -2.0 * np.pi**2 * N**2 * (N**2 - 1.0) * small / 3.0, rtol=1e-6, atol=1e-300
    )
    np.testing.assert_allclose(np.asarray(v0), N**2 * (1.0 - np.pi**2 * (N**2 - 1.0) * small**2 / 3.0), rtol=1e-12)
    v32, s32 = grating_sq_and_derivative(jnp.asarray(d, jnp.float32), jnp.asarray(N, jnp.float32))
    assert v32.dtype == s32.dtype == grating_sq(jnp.asarray(d, jnp.float32), jnp.float32(N)).dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(s32))) and np.all(np.isfinite(np.asarray(slope)))
    np.testing.assert_allclose(np.asarray(s32, np.float64), np.asarray(slope), atol=2e-5 * N**4 * np.pi)


def test_sinc3_smooth_across_series_switch():
    """Value and slope of sinc3(x) (as a function of x^2) are continuous across the switch
    between the series and the closed form, to float64 accuracy (the switch was once at
    x^2 = 1e-6, where the closed form had lost 10 digits)."""
    from nbjax.physics.lattice import _SINC3_SWITCH

    lo, hi = jnp.asarray(_SINC3_SWITCH * (1 - 1e-9)), jnp.asarray(_SINC3_SWITCH * (1 + 1e-9))
    slope_lo, slope_hi = float(jax.grad(sinc3_of_sq)(lo)), float(jax.grad(sinc3_of_sq)(hi))
    jump = float(sinc3_of_sq(hi)) - float(sinc3_of_sq(lo)) - slope_lo * float(hi - lo)
    assert abs(jump) < 1e-14, jump
    np.testing.assert_allclose(slope_lo, slope_hi, rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# regressions: bugs these tests found (polarization once divided by e_out^2 + b_out^2, whose
# square underflows just off the forward direction; render once called np.asarray on leaves)


def test_polarization_gradient_just_off_forward():
    from nbjax.physics.detector_response import polarization

    incident = jnp.array([1.0, 1e-100, 0.0])  # 2theta = 1e-100 rad to the forward pixel
    g = jax.grad(lambda d: polarization(incident, d, jnp.array([0.0, 0.0, 1.0]), 0.0))(jnp.array([1.0, 0.0, 0.0]))
    assert np.all(np.isfinite(np.asarray(g))), g


def test_distance_gradient_with_source_just_off_axis(tmp_path):
    """Found by properties/test_gradients_finite (thorough profile): DENZO's default beam centre is a
    pixel centre, and a source tilted by 1e-103 rad makes d loss / d distance NaN for every loss."""
    src = tmp_path / "sources.txt"
    src.write_text("-10 -1e-102 0 1 1e-10\n")
    exp = nbjax.experiment_from_args(
        [
            "-denzo",
            "-cell",
            "30",
            "-default_F",
            "100",
            "-N",
            "1",
            "-detpixels",
            "10",
            "-oversample",
            "1",
            "-sourcefile",
            str(src),
        ]
    )
    g = jax.grad(lambda d: nbjax.render(eqx.tree_at(lambda e: e.detector.distance, exp, d))[0, 0])(
        exp.detector.distance
    )
    assert np.isfinite(float(g)), g


def test_filter_grad_over_whole_experiment():
    exp = nbjax.experiment_from_args(
        ["-cell", "100", "-default_F", "100", "-N", "3", "-detpixels", "8", "-oversample", "1"]
    )
    g = eqx.filter_grad(lambda e: jnp.sum(nbjax.render(e)))(exp)
    assert np.isfinite(float(g.detector.distance))
