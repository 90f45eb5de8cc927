"""Per-source images and their forward-mode tangents, with the lattice derivative shared.

The Levenberg-Marquardt pass needs, per tile, the per-source images I_s(p) and their
derivatives along n_t tangent directions of theta (``_engine.Tangents``).  Plain
``vmap(jvp)`` pushes every tangent through the lattice transform, the costly part of a sample
(two polynomials per axis), so each tangent costs about two forward renders.  Here the chain
rule is applied at the Miller indices instead:

    h = (A_k d - A_k i_s) / lambda_s                 (samples.miller_indices)
    x = F^2 G(h),   x' = F^2 dG/dh . h'              (dG/dh once per sample, shared)
    I_s = R mean_q sum_l omega c P (B + mean_k x)

The geometry (d, omega, c, P, A_k, i_s, 1/lambda_s: per sub-pixel, orientation or source)
and h are differentiated by ``jax.jvp`` (cheap elementwise work per tangent), G by
``physics.lattice.lattice_sq_and_gradient`` once, and the sum by ``jax.jvp`` again, so a
tangent costs a few multiply-adds per sample.  ``eligible`` says when F_cell and G depend on
theta through h only; tests/test_fit.py checks the result against ``jax.jacfwd``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nbjax.accumulation import Physical, f_cell
from nbjax.experiment import R_E_SQR
from nbjax.physics.lattice import lattice_sq_and_gradient
from nbjax.samples import miller_indices, orientation_matrices, pixel_samples, unit


def through_miller_indices(reference) -> bool:
    """True when a sample depends on theta through its geometry and h only: the physical
    model with F_cell not interpolated (nearest table entries are constant in h)."""
    sfac = reference.structure_factors
    return type(reference.model) is Physical and not (sfac.grid is not None and sfac.interpolate)


def eligible(reference, layout) -> bool:
    """``through_miller_indices``, and no parameter that changes the lattice transform other
    than through h (crystal size; the cell for shapes that use a*, b*, c*)."""
    if not through_miller_indices(reference):
        return False
    names = {type(p).__name__ for p in layout.params}
    if "CrystalSize" in names:
        return False
    return not ("Cell" in names and reference.crystal.shape in ("gauss", "tophat"))


def _geometry(exp, fpix, spix, dtype):
    """The per-sub-pixel, per-orientation and per-source quantities of a tile."""
    s = pixel_samples(exp, fpix, spix, dtype)  # (its Miller indices and lattice are not used: XLA drops them)
    d = unit(s.pos, jnp.linalg.norm(s.pos, axis=-1))
    beam = exp.beam
    incident = -unit(beam.directions, jnp.linalg.norm(beam.directions, axis=-1))
    mats = orientation_matrices(exp.crystal, jnp.float64)
    return {"d": d, "omega": s.omega, "capture": s.capture, "polar": s.polar, "mats": mats, "incident": incident,
            "inv_lambda": 1.0 / beam.wavelengths}, s.dmin_skip


def _hkl(g):
    return miller_indices(g["mats"], g["d"], g["incident"], g["inv_lambda"])


def images_and_tangents(experiment_of, theta, vectors, fpix, spix, dtype):
    """(I (T, S), dI (n_t, T, S)) for ``experiment_of(theta)`` along ``vectors`` (n_t, n)."""
    exp = experiment_of(theta)
    geometry = lambda th: _geometry(experiment_of(th), fpix, spix, dtype)[0]  # noqa: E731
    g, g_dots = jax.vmap(lambda v: jax.jvp(geometry, (theta,), (v,)), out_axes=(None, 0))(vectors)
    skip = _geometry(exp, fpix, spix, dtype)[1]
    hkl = _hkl(g)
    xtal = exp.crystal
    fc = f_cell(exp, hkl, True).astype(dtype)
    f2 = jnp.where(skip[..., None], 0.0, fc * fc)
    G, dG = lattice_sq_and_gradient(hkl, xtal.N, xtal.fudge, xtal.recip, xtal.shape, dtype)
    x, dx_dh = f2 * G, f2[..., None] * dG  # computed once, kept for every tangent
    R = (R_E_SQR * exp.beam.fluence).astype(dtype)

    def combine(g, x):  # as Physical._per_source
        per_sample = exp.background + jnp.mean(x, axis=-1)
        factors = (g["omega"] * g["capture"])[..., None] * g["polar"]
        return R * jnp.mean(jnp.sum(per_sample * factors, axis=1), axis=1)

    def tangent(g_dot):  # one tangent at a time: its per-sample work fuses into one loop
        _, h_dot = jax.jvp(_hkl, (g,), (g_dot,))
        x_dot = jnp.sum(dx_dh * h_dot.astype(dtype), axis=-1)
        return jax.jvp(combine, (g, x), (g_dot, x_dot))[1]

    return combine(g, x), jax.lax.map(tangent, g_dots)
