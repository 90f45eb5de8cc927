"""Lattice transforms |F_latt|^2 of a finite crystal, gradient-safe at Bragg positions.

Shapes (C ``-square_xtal``, ``-round_xtal``, ``-gauss_xtal``, ``-tophat_spots``), with fractional
Miller indices h and Na, Nb, Nc unit cells:

* square:  F = prod_axes sin(pi N h) / sin(pi h)                     (the grating function sincg)
* round:   F = Na Nb Nc 0.723601254558268 sinc3(pi sqrt(fudge r^2)),  r^2 = sum (h-h0)^2 N^2
* gauss:   F = Na Nb Nc exp(-fudge R^2 / 0.63)
* tophat:  F = Na Nb Nc [fudge R^2 < 0.3969]

with h0 the nearest integer and R^2 = |sum (h-h0) a*|^2 Na^2 Nb^2 Nc^2 using the phi = 0
reciprocal vectors in 1/A (as the C program does).  All return F_latt^2.
"""

import math

import jax.numpy as jnp
import numpy as np

ROUND_VOLUME_FACTOR = 0.723601254558268


def _sinc_pi_coefficients(n_terms: int) -> np.ndarray:
    """Taylor coefficients of sin(pi x)/(pi x) in y = x^2: (-1)^k pi^(2k) / (2k+1)!."""
    return np.array([(-1) ** k * math.pi ** (2 * k) / math.factorial(2 * k + 1) for k in range(n_terms)])


# |x| <= 1/2: 11 terms reach float64 rounding (truncation < 3e-16), 7 terms float32.
_SINC_COEFFS = {np.dtype("float64"): _sinc_pi_coefficients(11), np.dtype("float32"): _sinc_pi_coefficients(7)}


def _sinc_pi_reduced(x):
    """sin(pi x)/(pi x) for |x| <= 1/2 by a polynomial in x^2 (no transcendental calls, smooth at 0)."""
    coeffs = _SINC_COEFFS[np.dtype(x.dtype)]
    y = x * x
    acc = jnp.full_like(y, coeffs[-1])
    for c in coeffs[-2::-1]:
        acc = acc * y + c
    return acc


def _sinc_pi(x):
    """sin(pi x)/(pi x), equal to 1 at x = 0 with a finite gradient (double where)."""
    small = jnp.abs(x) < 1e-4
    xs = jnp.where(small, 1.0, x)
    y = (jnp.pi * x) ** 2
    return jnp.where(small, 1.0 - y / 6.0 + y * y / 120.0, jnp.sin(jnp.pi * xs) / (jnp.pi * xs))


def grating_sq(h, N):
    """(sin(pi N h)/sin(pi h))^2, computed on h reduced to the nearest integer.

    With d = h - round(h) and u = N d - round(N d), |sin(pi N h)| = |sin(pi u)| and
    |sin(pi h)| = |sin(pi d)|, so float32 stays accurate at large h.  Where round(N d) == 0 the
    ratio is N sinc(u)/sinc(d), finite and smooth through d = 0 (value N^2 at a Bragg peak).
    """
    d = h - jnp.round(h)
    nd = N * d
    m = jnp.round(nd)
    u = nd - m
    near = m == 0
    scale = jnp.where(near, N, u / jnp.where(near, 1.0, d))
    ratio = scale * _sinc_pi_reduced(u) / _sinc_pi_reduced(d)
    return ratio * ratio


def sinc3_of_sq(x2):
    """sinc3(x) = 3 (sin x - x cos x)/x^3 as a function of x^2 (finite gradient at 0)."""
    small = x2 < 1e-6
    xs = jnp.sqrt(jnp.where(small, 1.0, x2))
    full = 3.0 * (jnp.sin(xs) - xs * jnp.cos(xs)) / (xs * xs * xs)
    return jnp.where(small, 1.0 - x2 / 10.0 + x2 * x2 / 280.0, full)


def lattice_sq(hkl, N, shape: str, fudge, recip):
    """F_latt^2 for fractional indices ``hkl`` (..., 3); N (3,); recip rows a*, b*, c* (1/A)."""
    if shape == "square":
        return grating_sq(hkl[..., 0], N[0]) * grating_sq(hkl[..., 1], N[1]) * grating_sq(hkl[..., 2], N[2])
    dh = hkl - jnp.round(hkl)
    n_cells = N[0] * N[1] * N[2]
    if shape == "round":
        hrad_sq = jnp.sum(dh * dh * N * N, axis=-1)
        f = n_cells * ROUND_VOLUME_FACTOR * sinc3_of_sq(jnp.pi**2 * hrad_sq * fudge)
        return f * f
    dstar = dh @ recip
    rad_star_sq = jnp.sum(dstar * dstar, axis=-1) * n_cells * n_cells
    if shape == "gauss":
        f = n_cells * jnp.exp(-(rad_star_sq / 0.63 * fudge))
    elif shape == "tophat":
        f = n_cells * (rad_star_sq * fudge < 0.3969)
    else:
        raise ValueError(f"unknown crystal shape {shape!r}")
    return f * f
