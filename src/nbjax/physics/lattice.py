"""Lattice transforms |F_latt|^2 of a finite crystal, gradient-safe at Bragg positions.

Shapes (C ``-square_xtal``, ``-round_xtal``, ``-gauss_xtal``, ``-tophat_spots``), with fractional
Miller indices h and Na, Nb, Nc unit cells:

* square:  F = prod_axes sin(pi N h) / sin(pi h)                     (the grating function sincg)
* round:   F = Na Nb Nc 0.723601254558268 sinc3(pi sqrt(fudge r^2)),  r^2 = sum (h-h0)^2 N^2
* gauss:   F = Na Nb Nc exp(-fudge R^2 / 0.63)
* tophat:  F = Na Nb Nc [fudge R^2 < 0.3969]

with h0 the nearest integer and R^2 = |sum (h-h0) a*|^2 Na^2 Nb^2 Nc^2 using the phi = 0
reciprocal vectors in 1/A (as the C program does).  All return F_latt^2.

Elementwise over any leading axes ``*batch`` of the indices (the samples' T L Q S K,
``nbjax.axes``); N, fudge and recip are the crystal's.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

ROUND_VOLUME_FACTOR = 0.723601254558268


def _sinc_pi_coefficients(n_terms: int) -> np.ndarray:
    """Taylor coefficients of sin(pi x)/(pi x) in y = x^2: (-1)^k pi^(2k) / (2k+1)!."""
    return np.array([(-1) ** k * math.pi ** (2 * k) / math.factorial(2 * k + 1) for k in range(n_terms)])


# |x| <= 1/2: 11 terms reach float64 rounding (truncation < 3e-16), 7 terms float32.
_SINC_COEFFS = {np.dtype("float64"): _sinc_pi_coefficients(11), np.dtype("float32"): _sinc_pi_coefficients(7)}


def _horner(coeffs, y):
    """sum_k coeffs[k] y^k in y's precision (NumPy float64 coefficients would promote float32)."""
    coeffs = np.asarray(coeffs, dtype=y.dtype)
    acc = jnp.full_like(y, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * y + c
    return acc


def _sinc_pi_reduced(x):
    """sin(pi x)/(pi x) for |x| <= 1/2 by a polynomial in x^2 (no transcendental calls, smooth at 0)."""
    return _horner(_SINC_COEFFS[np.dtype(x.dtype)], x * x)


def _sinc_pi_reduced_dy(x):
    """dP/dy of the polynomial P(y = x^2) of ``_sinc_pi_reduced``."""
    coeffs = _SINC_COEFFS[np.dtype(x.dtype)]
    return _horner(coeffs[1:] * np.arange(1, len(coeffs)), x * x)


def _reduction(h, N):
    """(n, d, m, u, near, safe_d): d = h - n with n = round(h), u = N d - m with m = round(N d),
    near = (m == 0), and d with 1 where near (a divisor that is never 0)."""
    n = jnp.round(h)
    d = h - n
    nd = N * d
    m = jnp.round(nd)
    u = nd - m
    near = m == 0
    return n, d, m, u, near, jnp.where(near, 1.0, d)


def _grating_ratio(N, u, near, safe_d, p_u, p_d):
    """sin(pi u)/sin(pi d) from the sinc polynomials p_u = P(u^2), p_d = P(d^2)."""
    return jnp.where(near, N, u / safe_d) * p_u / p_d


def _reduced_grating(h, N):
    """sin(pi u)/sin(pi d) with d = h - round(h), u = N d - round(N d): (ratio, n, m).

    |sin(pi N h)| = |sin(pi u)| and |sin(pi h)| = |sin(pi d)|, so float32 stays accurate at
    large h.  Where m = round(N d) == 0 the ratio is N sinc(u)/sinc(d), finite and smooth
    through d = 0 (value N at a Bragg peak).
    """
    n, d, m, u, near, safe_d = _reduction(h, N)
    return _grating_ratio(N, u, near, safe_d, _sinc_pi_reduced(u), _sinc_pi_reduced(d)), n, m


def grating_sq(h: Float[Array, "*batch"], N: Float[ArrayLike, ""]) -> Float[Array, "*batch"]:
    """(sin(pi N h)/sin(pi h))^2, the square of C's sincg(pi h, N)."""
    ratio = _reduced_grating(h, N)[0]
    return ratio * ratio


def _kept(x, one):
    """x / one with ``one`` == 1 known only at run time: x exactly, but as a division, which
    XLA:CPU computes once and keeps, where it would recompute a cheap elementwise producer (a
    polynomial) inside every consumer's fusion.  With it the spectrum gradient went from 2.97x
    to 1.77x the forward render (scripts/bench-fit, 1024^2 x 25 sources, float64)."""
    return x / one


def grating_sq_and_derivative(
    d: Float[Array, "*batch"], N: Float[ArrayLike, ""]
) -> tuple[Float[Array, "*batch"], Float[Array, "*batch"]]:
    """(``grating_sq``(d, N), its derivative in d) for a reduced index |d| <= 1/2, in closed form.

    With u = N d - m (m = round(N d)), P the sinc polynomial (sin(pi x) = pi x P(x^2)) and
    cos(pi x) = P(x^2) + 2 x^2 P'(x^2), the ratio r = sin(pi u)/sin(pi d) has

        r' = [m P_u P_d + 2 u d (N u P'_u P_d - d P_u P'_d)] / (d^2 P_d^2)
           = 2 N d (N^2 P'_u P_d - P_u P'_d) / P_d^2            (m = 0, no cancellation at d = 0)

    and (r^2)' = 2 r r'.  Four polynomial evaluations instead of forward mode through the
    ratio (about half the cost); the value is ``grating_sq``'s, bit for bit.
    """
    _, dd, m, u, near, safe_d = _reduction(d, N)  # dd = d for |d| < 1/2, reduced as grating_sq does
    one = N * 0.0 + 1.0  # 1, known only at run time (XLA keeps x * 0 for NaN's sake)
    p_u, p_d = _kept(_sinc_pi_reduced(u), one), _kept(_sinc_pi_reduced(dd), one)
    q_u, q_d = _sinc_pi_reduced_dy(u), _sinc_pi_reduced_dy(dd)
    ratio = _grating_ratio(N, u, near, safe_d, p_u, p_d)
    cross = N * u * q_u * p_d - dd * p_u * q_d
    slope_numerator = jnp.where(
        near, 2.0 * N * dd * (N * N * q_u * p_d - p_u * q_d), m * p_u * p_d + 2.0 * u * safe_d * cross
    )
    slope = slope_numerator / (jnp.where(near, 1.0, safe_d * safe_d) * p_d * p_d)
    return ratio * ratio, 2.0 * ratio * slope


# sinc3(x) = 3 sum_j (-1)^j 2(j+1)/(2j+3)! x^(2j); 7 terms reach float64 rounding for x^2 < 0.1
_SINC3_SERIES = np.array([3.0 * (-1) ** j * 2 * (j + 1) / math.factorial(2 * j + 3) for j in range(7)])
_SINC3_SWITCH = 0.1


def sinc3_of_sq(x2: Float[Array, "*batch"]) -> Float[Array, "*batch"]:
    """sinc3(x) = 3 (sin x - x cos x)/x^3 as a function of x^2.

    Below x^2 = 0.1 (where the closed form cancels badly) a 7-term series in x^2, which is
    exact to rounding there and smooth through 0; the gradient is finite everywhere.
    """
    small = x2 < _SINC3_SWITCH
    xs = jnp.sqrt(jnp.where(small, 1.0, x2))
    full = 3.0 * (jnp.sin(xs) - xs * jnp.cos(xs)) / (xs * xs * xs)
    return jnp.where(small, _horner(_SINC3_SERIES, x2), full)


def grating(h: Float[Array, "*batch"], N: Float[ArrayLike, ""]) -> Float[Array, "*batch"]:
    """C's sincg(pi h, N) = sin(pi N h)/sin(pi h) = (-1)^((N-1) n + m) sin(pi u)/sin(pi d)."""
    ratio, n, m = _reduced_grating(h, N)
    return (1.0 - 2.0 * jnp.mod((N - 1) * n + m, 2.0)) * ratio


def lattice_sq(
    hkl: Float[Array, "*batch 3"],
    N: Float[Array, "3"],
    shape: str,
    fudge: Float[ArrayLike, ""],
    recip: Float[Array, "3 3"],
) -> Float[Array, "*batch"]:
    """F_latt^2 for fractional indices ``hkl`` (..., 3); N (3,); recip rows a*, b*, c* (1/A)."""
    if shape == "square":
        return grating_sq(hkl[..., 0], N[0]) * grating_sq(hkl[..., 1], N[1]) * grating_sq(hkl[..., 2], N[2])
    f = lattice_amplitude(hkl, N, shape, fudge, recip)
    return f * f


def round_radius_sq(hkl: Float[Array, "*batch 3"], N: Float[Array, "3"]) -> Float[Array, "*batch"]:
    """r^2 = sum (h - h0)^2 N^2 of the round crystal shape."""
    dh = hkl - jnp.round(hkl)
    return jnp.sum(dh * dh * N * N, axis=-1)


def lattice_amplitude(
    hkl: Float[Array, "*batch 3"],
    N: Float[Array, "3"],
    shape: str,
    fudge: Float[ArrayLike, ""],
    recip: Float[Array, "3 3"],
) -> Float[Array, "*batch"]:
    """F_latt with its sign (the grating functions' signs for the square shape)."""
    if shape == "square":
        return grating(hkl[..., 0], N[0]) * grating(hkl[..., 1], N[1]) * grating(hkl[..., 2], N[2])
    dh = hkl - jnp.round(hkl)
    n_cells = N[0] * N[1] * N[2]
    if shape == "round":
        return n_cells * ROUND_VOLUME_FACTOR * sinc3_of_sq(jnp.pi**2 * round_radius_sq(hkl, N) * fudge)
    dstar = dh @ recip
    rad_star_sq = jnp.sum(dstar * dstar, axis=-1) * n_cells * n_cells
    if shape == "gauss":
        return n_cells * jnp.exp(-(rad_star_sq / 0.63 * fudge))
    if shape == "tophat":
        return n_cells * (rad_star_sq * fudge < 0.3969)
    raise ValueError(f"unknown crystal shape {shape!r}")


def lattice_sq_in(
    hkl: Float[Array, "*batch 3"],
    N: Float[Array, "3"],
    fudge: Float[ArrayLike, ""],
    recip: Float[Array, "3 3"],
    shape: str,
    dtype,
) -> Float[Array, "*batch"]:
    """F_latt^2 in ``dtype``; the square shape reduces h to its fraction in float64 first
    (float32 keeps the peaks), the others compute in float64."""
    if shape == "square":
        frac = (hkl - jnp.round(hkl)).astype(dtype)
        return lattice_sq(frac, N.astype(dtype), "square", fudge.astype(dtype), recip.astype(dtype))
    return lattice_sq(hkl, N, shape, fudge, recip).astype(dtype)


def lattice_sq_and_gradient(
    hkl: Float[Array, "*batch 3"],
    N: Float[Array, "3"],
    fudge: Float[ArrayLike, ""],
    recip: Float[Array, "3 3"],
    shape: str,
    dtype,
) -> tuple[Float[Array, "*batch"], tuple[Float[Array, "*batch"], Float[Array, "*batch"], Float[Array, "*batch"]]]:
    """(``lattice_sq_in``, its derivative dF_latt^2/dh as three arrays, one per axis; separate
    arrays, because XLA:CPU would recompute every axis's polynomials for each component of a
    stacked one), elementwise (reverse mode would keep every term of the lattice polynomials
    per sample).  The square shape is a product over axes, g(h_0) g(h_1) g(h_2), with each
    g' in closed form (``grating_sq_and_derivative``; d frac/dh = 1); the others take three
    forward-mode tangents.  Used by ``nbjax.fit``'s source adjoint and LM tangents."""
    if shape == "square":
        frac = (hkl - jnp.round(hkl)).astype(dtype)
        n = N.astype(dtype)
        (g0, d0), (g1, d1), (g2, d2) = [grating_sq_and_derivative(frac[..., k], n[k]) for k in range(3)]
        return g0 * g1 * g2, (d0 * g1 * g2, g0 * d1 * g2, g0 * g1 * d2)

    def f(h):
        return lattice_sq_in(h, N, fudge, recip, shape, dtype)

    units = [jnp.zeros_like(hkl).at[..., k].set(1.0) for k in range(3)]
    return f(hkl), tuple(jax.jvp(f, (hkl,), (u,))[1] for u in units)
