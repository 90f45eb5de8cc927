"""The loss gradient for source parameters, one tile at a time, with the adjoint written out.

When every free parameter changes only the beam (wavelengths, source directions, weights) or
the linear parts (scale, background), theta reaches the model pixels only through

    b(theta) = (1/lambda_s, incident i_s, polarization form M_s, weights w_s, scale, background)

of S sources.  With the physical model (``nbjax.Physical``), per tile of pixels p

    m_p  = scale sum_s w_s I_s(p) + background,     I_s(p) = R mean_q sum_l omega c [P (B + mean_k x)]
    x    = F^2 G(h),   h_{s,k} = (A_k d - A_k i_s) / lambda_s,   P = 1/2 (1 + d^T M_s d)

(R = r_e^2 fluence; d the diffracted unit vector of a sub-pixel; A_k the k-th rotated cell;
G the lattice transform; M_s = i i^T - K (e e^T - b b^T), the Kahn form of
``physics.detector_response.polarization_form``).  With r_p = dl/dm_p the adjoint of b is

    dL/dw_s       = scale sum_p r_p I_s(p)
    dL/dscale     = sum_p r_p sum_s w_s I_s(p),         dL/dbackground = sum_p r_p
    eta           = r_p R scale w_s omega c P / (Q K) F^2 dG/dh       (a 3-vector per sample)
    dL/d(1/lam_s) = sum eta . h lambda_s,                dL/di_s |lattice = -(1/lam_s) sum_k A_k^T sum_(p,l,q) eta
    dL/dM_s       = 1/2 sum_(p,l,q) r_p R scale w_s omega c (B + mean_k x)/Q d d^T

so a tile costs its forward samples, one elementwise derivative of x and a few contractions,
and no stored intermediates beyond the tile.  The small map theta -> b is differentiated by
``jax.vjp`` after all tiles.  ``eligible`` says when this applies; otherwise the engine uses
reverse mode through the whole tile.  tests/test_fit.py checks this gradient against the
Levenberg-Marquardt pass's J^T dl/dm, which is checked against central finite differences.
"""

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from nbjax.accumulation import source_images
from nbjax.ctables.constants import R_E_SQR
from nbjax.experiment import Experiment
from nbjax.fit._tangents import geometry, hkl_of, through_miller_indices, x_and_gradient
from nbjax.physics.detector_response import polarization_form
from nbjax.samples import unit

BEAM_ROLES = ("weights", "scale", "background")


def eligible(reference, layout) -> bool:
    """True when the hand-written adjoint covers this image's parameters and model."""
    if not through_miller_indices(reference):
        return False
    return all(p.role in BEAM_ROLES or p.beam_only for p in layout.params)


def tile_terms(
    exp: Experiment,
    beam_values: tuple,
    fpix: Int[Array, " T"],
    spix: Int[Array, " T"],
    valid: Bool[Array, " T"],
    data: Float[Array, " T"],
    sigma: Float[Array, " T"],
    loss,
    dtype,
) -> tuple[Float[Array, ""], tuple]:
    """(loss of the tile, cotangents of ``beam_values``) for one tile; ``beam_values`` =
    (inv_lambda (S,), incident (S, 3), M (S, 3, 3), w (S,), scale, background)."""
    inv_lambda, incident, M, w, scale, background = beam_values
    g, skip = geometry(exp, fpix, spix, dtype)
    g = dict(g, incident=incident, inv_lambda=inv_lambda)  # the beam as b carries it
    hkl = hkl_of(g)  # (T, L, Q, S, K, 3)
    T, L, Q, S, K = hkl.shape[:5]
    x, grad_x = x_and_gradient(exp, hkl, skip, dtype)
    d = g["d"].astype(dtype)  # (T, L, Q, 3)
    if exp.beam.nopolar:
        P = jnp.ones((T, L, Q, S), dtype)
    else:
        P = 0.5 * (1.0 + jnp.einsum("tlqi,sij,tlqj->tlqs", d, M.astype(dtype), d))
    I = source_images(exp, x, g["omega"], g["capture"], P, dtype)  # (T, S)
    wd, scale_d = w.astype(dtype), scale.astype(dtype)
    Iw = I @ wd
    m = scale_d * Iw + background.astype(dtype)
    l, dl, _ = loss.terms(m, data, sigma)
    total = jnp.sum(jnp.where(valid, l, 0.0))
    r = jnp.where(valid, dl, 0.0).astype(dtype)  # (T,)
    g_w = scale_d * (r @ I)
    g_scale = jnp.sum(r * Iw)
    g_background = jnp.sum(r)
    coef = (R_E_SQR * exp.beam.fluence).astype(dtype) * scale_d * wd  # (S,)
    rc = r[:, None, None, None] * (g["omega"] * g["capture"])[..., None]  # (T, L, Q, 1)
    zeta = (rc * P * coef / (Q * K))[..., None]  # (T, L, Q, S, 1): the cotangent of every x
    eta = [(zeta * grad_x[c]).astype(jnp.float64) for c in range(3)]  # 3 x (T, L, Q, S, K)
    eta_sum = jnp.stack([jnp.sum(e, axis=(0, 1, 2)) for e in eta], axis=-1)  # (S, K, 3)
    g_inv_lambda = jnp.sum(sum(e * hkl[..., c] for c, e in enumerate(eta)), axis=(0, 1, 2, 4)) / inv_lambda
    g_incident = -inv_lambda[:, None] * jnp.einsum("kij,ski->sj", g["mats"], eta_sum)
    if exp.beam.nopolar:
        g_M = jnp.zeros_like(M)
    else:
        psi = rc * (exp.background + jnp.mean(x, axis=-1)) * coef / Q  # (T, L, Q, S)
        g_M = 0.5 * jnp.einsum("tlqs,tlqi,tlqj->sij", psi, d, d).astype(M.dtype)
    cot = (
        g_inv_lambda,
        g_incident,
        g_M,
        g_w.astype(w.dtype),
        g_scale.astype(scale.dtype),
        g_background.astype(background.dtype),
    )
    return total, cot


def beam_values(
    exp: Experiment, w: Float[Array, " S"], scale: Float[Array, ""], background: Float[Array, ""]
) -> tuple[
    Float[Array, " S"],
    Float[Array, "S 3"],
    Float[Array, "S 3 3"],
    Float[Array, " S"],
    Float[Array, ""],
    Float[Array, ""],
]:
    """b(theta) of the module docstring from an Experiment and the linear parts."""
    beam = exp.beam
    incident = -unit(beam.directions, jnp.linalg.norm(beam.directions, axis=-1))
    return (
        1.0 / beam.wavelengths,
        incident,
        polarization_form(incident, beam.polar_vector, beam.kahn),
        w,
        scale,
        background,
    )
