"""Unit cell to real- and reciprocal-space lattice vectors, following the C set-up exactly.

Order of operations (C main, after parsing): reciprocal cell from the cell constants (or the
A matrix), misset rotation of the reciprocal vectors, then direct vectors a = (b* x c*) V_cell
(rescaled to the user's cell lengths), then the reciprocal vectors regenerated from them.
All functions take the array namespace ``xp`` so ``jax.grad`` reaches cell lengths, angles and
misset angles through the same formulas the CLI uses.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from nbjax.ctables.constants import DBL_MIN
from nbjax.errors import NBError
from nbjax.physics.rotations import cdot, rotate_xyz


class Lattice(NamedTuple):
    """Lattice vectors of the unrotated (phi = 0, mosaic = 0) crystal."""

    a: object  # (3,) real-space vectors, metres
    b: object
    c: object
    a_star: object  # (3,) reciprocal vectors, 1/Angstrom (used by the spot-shape functions)
    b_star: object
    c_star: object
    V_cell: object  # Angstrom^3


def _norm(v, xp):
    return xp.sqrt(xp.sum(v * v))


def reciprocal_from_cell(cell, xp=np):
    """Reciprocal vectors (1/A) of cell (a, b, c in A; alpha, beta, gamma in rad), C's frame.

    a* along x, b* in the xy plane; V = 2abc sqrt|sin(s) sin(s-alpha) sin(s-beta) sin(s-gamma)|
    with s = (alpha+beta+gamma)/2.  Returns (a*, b*, c*, V_cell).
    """
    a, b, c, alpha, beta, gamma = (cell[i] for i in range(6))
    aavg = (alpha + beta + gamma) / 2
    skew = xp.abs(xp.sin(aavg) * xp.sin(aavg - alpha) * xp.sin(aavg - beta) * xp.sin(aavg - gamma))
    V_cell = 2.0 * a * b * c * xp.sqrt(skew)
    V_cell = xp.where(V_cell <= 0.0, DBL_MIN, V_cell)
    V_star = 1.0 / V_cell
    a_star_len = b * c * xp.sin(alpha) * V_star
    b_star_len = c * a * xp.sin(beta) * V_star
    c_star_len = a * b * xp.sin(gamma) * V_star
    cos_alpha_star = (xp.cos(beta) * xp.cos(gamma) - xp.cos(alpha)) / (xp.sin(beta) * xp.sin(gamma))
    cos_beta_star = (xp.cos(gamma) * xp.cos(alpha) - xp.cos(beta)) / (xp.sin(gamma) * xp.sin(alpha))
    cos_gamma_star = (xp.cos(alpha) * xp.cos(beta) - xp.cos(gamma)) / (xp.sin(alpha) * xp.sin(beta))
    sin_gamma_star = xp.minimum(c * V_star / a_star_len / b_star_len, 1.0)
    cos_alpha_star = xp.where(cos_alpha_star**2 > 1.0, 1.0, cos_alpha_star)
    cos_beta_star = xp.where(cos_beta_star**2 > 1.0, 1.0, cos_beta_star)
    cos_gamma_star = xp.where(cos_gamma_star**2 > 1.0, 1.0, cos_gamma_star)
    zero = 0.0 * a
    a_star = xp.stack([a_star_len, zero, zero])
    b_star = xp.stack([b_star_len * cos_gamma_star, b_star_len * sin_gamma_star, zero])
    c_star = xp.stack(
        [
            c_star_len * cos_beta_star,
            c_star_len * (cos_alpha_star - cos_beta_star * cos_gamma_star) / sin_gamma_star,
            c_star_len * V_cell / (a * b * c * sin_gamma_star),
        ]
    )
    return a_star, b_star, c_star, V_cell


def lattice_from_reciprocal(a_star, b_star, c_star, misset=None, cell_lengths=None, V_cell_user=None, xp=np):
    """Apply the misset (rad, about x, y, z) and build both sets of vectors, as C does.

    With a user cell (``cell_lengths`` and ``V_cell_user`` given) the cross products are forced to
    the user's lengths: |b* x c*| = a / V_cell.
    """
    if misset is not None:
        a_star, b_star, c_star = (rotate_xyz(v, misset[0], misset[1], misset[2], xp) for v in (a_star, b_star, c_star))
    bxc, cxa, axb = xp.cross(b_star, c_star), xp.cross(c_star, a_star), xp.cross(a_star, b_star)
    V_star = xp.sum(a_star * bxc)
    if cell_lengths is not None:
        la, lb, lc = cell_lengths
        bxc = bxc * (la / V_cell_user / _safe_norm(bxc, xp))
        cxa = cxa * (lb / V_cell_user / _safe_norm(cxa, xp))
        axb = axb * (lc / V_cell_user / _safe_norm(axb, xp))
        V_star = 1.0 / V_cell_user
    V_cell = 1.0 / V_star
    a, b, c = bxc * V_cell, cxa * V_cell, axb * V_cell
    a_star, b_star, c_star = xp.cross(b, c) * V_star, xp.cross(c, a) * V_star, xp.cross(a, b) * V_star
    return Lattice(a * 1e-10, b * 1e-10, c * 1e-10, a_star, b_star, c_star, V_cell)


def _safe_norm(v, xp):
    n = _norm(v, xp)
    return xp.where(n <= 0.0, 1.0, n)


def lattice_from_cell(cell, misset=None, xp=np) -> Lattice:
    """Lattice of a cell (A, rad) with an optional misset (rad); differentiable in all inputs."""
    cell = [xp.asarray(x) for x in cell]
    a_star, b_star, c_star, V_cell = reciprocal_from_cell(cell, xp)
    return lattice_from_reciprocal(a_star, b_star, c_star, misset, cell[:3], V_cell, xp)


def fill_cell_defaults(cell):
    """C's defaults for -cell: b, c <= 0 take a; angles <= 0 take 90 degrees."""
    a, b, c, al, be, ga = cell
    b = a if b <= 0 else b
    c = a if c <= 0 else c
    al, be, ga = (math.pi / 2 if x <= 0 else x for x in (al, be, ga))
    return [a, b, c, al, be, ga]


def cell_parameters(lat: Lattice):
    """(a, b, c, alpha, beta, gamma) in A and degrees, and the reciprocal ones, as C prints them.

    C takes sin(alpha) = |a*| V / (|b| |c|) and cos(alpha) = b.c / (|b| |c|), clamped, then atan2.
    """

    def params(u, v, w, u_dual, volume):
        vecs = (u, v, w)
        lens = [float(np.linalg.norm(x)) for x in vecs]
        dual = [float(np.linalg.norm(x)) for x in u_dual]
        out = []
        for i, (j, k) in enumerate(((1, 2), (0, 2), (0, 1))):  # alpha: b,c; beta: a,c; gamma: a,b
            lp, lq = lens[j], lens[k]
            sin = min(max(dual[i] * volume / lp / lq, -1.0), 1.0)
            cos = cdot(vecs[j], vecs[k]) / lp / lq
            out.append(math.degrees(math.atan2(sin, 1.0 if cos * cos > 1.0 else cos)))
        return lens + out

    V = float(lat.V_cell)
    real = (lat.a * 1e10, lat.b * 1e10, lat.c * 1e10)
    recip = (lat.a_star, lat.b_star, lat.c_star)
    return params(*real, recip, V), params(*recip, real, 1.0 / V)


def angles_possible(alpha, beta, gamma) -> bool:
    """Whether three cell angles (rad) belong to a real cell: each below the sum of the other
    two, and all three below 360 degrees together."""
    a, b, c = alpha, beta, gamma
    return (
        0 < a < math.pi
        and 0 < b < math.pi
        and 0 < c < math.pi
        and a + b + c < 2 * math.pi
        and a < b + c
        and b < a + c
        and c < a + b
    )


def check_cell(cell) -> str | None:
    """The cell (a, b, c in A, angles in rad, C's defaults not yet filled) as C will use it:
    NBError when its formulas give no finite lattice (C renders a NaN image), a warning line
    when the angles describe no real cell but C's formulas give another one, else None."""
    cell = fill_cell_defaults(cell)
    if angles_possible(*cell[3:]):
        return None
    typed = " ".join(f"{math.degrees(x):g}" for x in cell[3:])
    with np.errstate(all="ignore"):
        lattice = lattice_from_cell(cell)
        finite = all(np.all(np.isfinite(np.asarray(v))) for v in lattice) and float(lattice.V_cell) > DBL_MIN
        real = cell_parameters(lattice)[0] if finite else None
    if not finite or not all(math.isfinite(x) for x in real):
        raise NBError(
            f"-cell: the angles {typed} deg describe no unit cell and give it no volume (nanoBragg would render a "
            "NaN image)"
        )
    return (
        f"-cell: the angles {typed} deg describe no unit cell (each must be below the sum of the other two, all "
        "three below 360); "
        f"like nanoBragg, nbjax renders the cell its formulas give: {' '.join(f'{x:g}' for x in real)}"
    )
