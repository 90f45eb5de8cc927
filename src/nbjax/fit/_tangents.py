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

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from nbjax.accumulation import Physical, f_cell, source_images
from nbjax.experiment import Experiment
from nbjax.physics.lattice import lattice_sq_and_gradient
from nbjax.samples import miller_indices, orientation_matrices, pixel_samples, unit


def through_miller_indices(reference) -> bool:
    """True when a sample depends on theta through its geometry and h only: the physical
    model with F_cell not interpolated (nearest table entries are constant in h)."""
    sfac = reference.structure_factors
    return type(reference.model) is Physical and not (sfac.grid is not None and sfac.interpolate)


def eligible(reference, layout) -> bool:
    """``through_miller_indices``, and no parameter that changes the lattice transform other
    than through h (``changes_lattice``: the crystal size; the cell for shapes that use a*,
    b*, c*)."""
    if not through_miller_indices(reference):
        return False
    return not any(p.changes_lattice(reference) for p in layout.params)


def geometry(exp, fpix, spix, dtype):
    """(per-sub-pixel, per-orientation and per-source quantities of a tile, its dmin mask):
    d (T, L, Q, 3) float64, omega, capture, polar (model's), mats (K, 3, 3), incident (S, 3),
    inv_lambda (S,)."""
    s = pixel_samples(exp, fpix, spix, dtype)  # (its Miller indices and lattice are not used: XLA drops them)
    beam = exp.beam
    g = {
        "d": unit(s.pos, jnp.linalg.norm(s.pos, axis=-1)),
        "omega": s.omega,
        "capture": s.capture,
        "polar": s.polar,
        "mats": orientation_matrices(exp.crystal, jnp.float64),
        "incident": -unit(beam.directions, jnp.linalg.norm(beam.directions, axis=-1)),
        "inv_lambda": 1.0 / beam.wavelengths,
    }
    return g, s.dmin_skip


def hkl_of(g):
    return miller_indices(g["mats"], g["d"], g["incident"], g["inv_lambda"])


def x_and_gradient(
    exp: Experiment, hkl: Float[Array, "T L Q S K 3"], skip: Bool[Array, "T L Q S"], dtype
) -> tuple[Float[Array, "T L Q S K"], tuple[Float[Array, "T L Q S K"], ...]]:
    """x = F^2 G(h) per sample (0 where dmin skips it) and dx/dh as three arrays, one per axis
    of h (``lattice_sq_and_gradient`` says why); F_cell is the nearest table entry, constant
    in h."""
    xtal = exp.crystal
    fc = f_cell(exp, hkl, True).astype(dtype)
    f2 = jnp.where(skip[..., None], 0.0, fc * fc)
    G, dG = lattice_sq_and_gradient(hkl, xtal.N, xtal.fudge, xtal.recip, xtal.shape, dtype)
    return f2 * G, tuple(f2 * dG_c for dG_c in dG)


def images_and_tangents(
    experiment_of,
    theta: Float[Array, " n"],
    vectors: Float[Array, "tangents n"],
    fpix: Int[Array, " T"],
    spix: Int[Array, " T"],
    dtype,
) -> tuple[Float[Array, "T S"], Float[Array, "tangents T S"]]:
    """(I (T, S), dI (n_t, T, S)) for ``experiment_of(theta)`` along ``vectors`` (n_t, n)."""
    exp = experiment_of(theta)
    g, g_dots, skip = jax.vmap(
        lambda v: jax.jvp(lambda th: geometry(experiment_of(th), fpix, spix, dtype), (theta,), (v,), has_aux=True),
        out_axes=(None, 0, None),
    )(vectors)
    x, dx_dh = x_and_gradient(exp, hkl_of(g), skip, dtype)  # computed once, kept for every tangent

    def combine(g, x):
        return source_images(exp, x, g["omega"], g["capture"], g["polar"], dtype)

    def tangent(g_dot):  # one tangent at a time: its per-sample work fuses into one loop
        _, h_dot = jax.jvp(hkl_of, (g,), (g_dot,))
        x_dot = sum(dx_dh[c] * h_dot[..., c].astype(dtype) for c in range(3))
        return jax.jvp(combine, (g, x), (g_dot, x_dot))[1]

    return combine(g, x), jax.lax.map(tangent, g_dots)
