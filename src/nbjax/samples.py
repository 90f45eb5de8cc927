"""Per-sample geometry of a tile of pixels: where each sub-pixel is, which Miller indices it
sees for every source and crystal orientation, and the detector factors.

Axes, in the C program's loop order: T pixels of the tile, L sensor layers, Q sub-pixels (slow
sub-pixel outer), S sources, K orientations (phi outer, mosaic domain inner); every axis name
is defined in ``nbjax.axes``.  Lengths in metres, wavelengths in metres, Miller indices
dimensionless.

    d = p/|p|                   diffracted unit vector to sub-pixel position p
    i = -s                      incident unit vector (s: unit vector towards source)
    h = A (d - i) / lambda      fractional Miller indices, A = U_m R(phi) [a b c]^T

Geometry and Miller indices are float64; the lattice transform and the factors are cast to the
render's dtype.  Which polarization (per sample or C's cached one) and which lattice formula
(smooth or C's) is the model's choice (``nbjax.accumulation``).
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int

from nbjax.experiment import Experiment
from nbjax.physics.curved_detector import curved_positions
from nbjax.physics.detector_response import capture_fraction, solid_angle
from nbjax.physics.rotations import rotate_axis


class PixelSamples(eqx.Module):
    """Everything the accumulation needs for one tile (shapes in the module docstring)."""

    hkl: Float[Array, "T L Q S K 3"]
    f_latt_sq: Float[Array, "T L Q S K"]
    omega: Float[Array, "T L Q"]  # solid angle, sr
    capture: Float[Array, "T L Q"]  # sensor capture fraction
    polar: Float[Array, " T #L #Q #S"]  # polarization factor (C mode: one cached value per pixel)
    dmin_skip: Bool[Array, "T L Q S"]  # resolution beyond -dmin: the sample is not summed
    pos: Float[Array, "T L Q 3"]  # sub-pixel positions, m
    stol_sq: Float[Array, "T L Q S"]  # (sin(theta)/lambda)^2, 1/m^2


def orientation_matrices(crystal, dtype, phi=None) -> Float[Array, "K 3 3"]:
    """(P*M, 3, 3) rotated cells, phi outer and mosaic inner; rows are a, b, c (m).

    a = U_m R(spindle, phi_k) a0: the mosaic rotation follows the phi rotation, as in C.
    ``phi`` replaces the crystal's angles (the C model's first phi loop).
    """
    cell = jnp.stack([crystal.a, crystal.b, crystal.c]).astype(dtype)  # (3 vectors, 3)
    phi = (crystal.phi if phi is None else phi).astype(dtype)
    rotated = rotate_axis(cell[None, :, :], crystal.spindle.astype(dtype), phi[:, None, None], jnp)  # (P, 3, 3)
    mats = jnp.einsum("mij,pvj->pmvi", crystal.mosaic_umats.astype(dtype), rotated)
    return mats.reshape(-1, 3, 3)


def _rounded(product):
    """``product`` rounded to its dtype before it is summed, as C sums: XLA fuses a product
    into the following addition (a fused multiply-add), which moves a pixel that C puts
    exactly on the direct beam 1e-19 m off it.  The select is the identity (NaN stays NaN)
    but keeps the fusion from seeing the multiply (round-xtal-beam-on-pixel-rotated-detector)."""
    return jnp.where(jnp.isnan(product), jnp.nan, product)


def unit(v, magnitude):
    """v / |v| by true division per component, as C's unitize: XLA turns a division by a
    broadcast magnitude into a product with its reciprocal, which can leave a vector on the
    direct beam 1 ulp off the beam direction (round-xtal-beam-on-corner-pixel)."""
    return jnp.stack([v[..., k] / magnitude for k in range(3)], axis=-1)


def subpixel_positions(
    det, fpix: Int[Array | np.ndarray, " T"], spix: Int[Array | np.ndarray, " T"]
) -> Float[Array, "T L Q 3"]:
    """Sub-pixel centres in the lab frame (m), C order: layer, slow sub, fast sub; each term
    rounded before the sum, as C adds them."""
    os = det.oversample
    ss, ff = np.meshgrid(np.arange(os), np.arange(os), indexing="ij")
    Fdet = det.fast_positions[fpix[:, None] * os + ff.reshape(-1)[None, :]]  # (T, Q)
    Sdet = det.slow_positions[spix[:, None] * os + ss.reshape(-1)[None, :]]
    Odet = jnp.arange(det.layers, dtype=jnp.float64) * det.layer_step  # (L,)
    pix0 = det.pix0_offset + _rounded(det.distance * det.pivot_axis)  # Detector.pix0, unfused
    pos = (
        _rounded(Fdet[:, None, :, None] * det.fdet)
        + _rounded(Sdet[:, None, :, None] * det.sdet)
        + _rounded(Odet[None, :, None, None] * det.odet)
        + pix0
    )
    if det.curved:
        pos = curved_positions(pos, det)
    return pos


def miller_indices(mats, diffracted, incident, inv_lambda) -> Float[Array, "T L Q S K 3"]:
    """h = A (d - i)/lambda computed as (A d - A i)/lambda: A d once for all sources, the
    cheaper form (2 operations per index instead of 3)."""
    a_d = jnp.einsum("kij,tlqj->tlqki", mats, diffracted)
    a_i = jnp.einsum("kij,sj->ski", mats, incident)
    return (a_d[:, :, :, None] - a_i) * inv_lambda[:, None, None]


def miller_indices_c_order(mats, diffracted, incident, inv_lambda) -> Float[Array, "T L Q S K 3"]:
    """h = A S with S = (d - i)/lambda formed first, as C does.  On the direct beam d == i, so
    S and h are exactly 0 (C's sinc3 gives 1 there); a pixel 1 ulp off the beam keeps its tiny
    S, which A d - A i would round away (round-xtal-misset-beam-on-pixel)."""
    scattering = (diffracted[:, :, :, None, :] - incident) * inv_lambda[:, None]  # (T, L, Q, S, 3)
    S = scattering[:, :, :, :, None, None, :]  # against mats (K, 3 rows, 3): (T, L, Q, S, 1, 1, 3)
    # C's dot_product: a0 S0 + a1 S1 + a2 S2, each product rounded, summed left to right
    # (elementwise, so XLA fuses it into the tile's loop; a dot_general would not be)
    return _rounded(mats[..., 0] * S[..., 0]) + _rounded(mats[..., 1] * S[..., 1]) + _rounded(mats[..., 2] * S[..., 2])


def resolution(
    exp: Experiment, diffracted, incident, inv_lambda
) -> tuple[Float[Array, "T L Q S"], Bool[Array, "T L Q S"]]:
    """((sin(theta)/lambda)^2 in 1/m^2, and whether the sample lies beyond -dmin) per sample."""
    scattering = (diffracted[:, :, :, None, :] - incident) * inv_lambda[:, None]  # (T, L, Q, S, 3)
    stol_sq = 0.25 * lax.stop_gradient(jnp.sum(scattering * scattering, axis=-1))
    return stol_sq, (exp.dmin > 0.0) & (stol_sq > 0.0) & (4.0 * exp.dmin * exp.dmin * stol_sq > 1.0)  # d < dmin


def pixel_samples(
    exp: Experiment,
    fpix: Int[Array | np.ndarray, " T"],
    spix: Int[Array | np.ndarray, " T"],
    dtype,
    first_pixel: bool = False,
) -> PixelSamples:
    """The samples of pixels (fpix, spix) under ``exp.model``.  ``first_pixel``: the tile is
    the run's first rendered pixel (the C model renders its first phi loop differently)."""
    det, beam, xtal, model = exp.detector, exp.beam, exp.crystal, exp.model
    pos = subpixel_positions(det, fpix, spix)
    airpath = jnp.linalg.norm(pos, axis=-1)  # (T, L, Q)
    diffracted = unit(pos, airpath)
    omega = solid_angle(airpath, jnp.dot(det.pix0, det.odet), det.pixel_size, det.point_pixel)
    if det.thick:
        layer = jnp.arange(det.layers, dtype=jnp.float64)[None, :, None]
        capture = capture_fraction(diffracted, det.odet, layer, det.layer_step, det.mu)
    else:
        capture = jnp.ones_like(omega)
    incident = -unit(beam.directions, jnp.linalg.norm(beam.directions, axis=-1))  # (S, 3)
    inv_lambda = 1.0 / beam.wavelengths  # (S,)
    stol_sq, dmin_skip = resolution(exp, diffracted, incident, inv_lambda)
    polar = model.polarization(exp, incident, diffracted, dmin_skip)
    hkl = model.miller_indices(exp, diffracted, incident, inv_lambda, dmin_skip, first_pixel)
    f_latt_sq = model.lattice_sq(hkl, xtal, dtype)
    return PixelSamples(
        hkl=hkl,
        f_latt_sq=f_latt_sq,
        omega=omega.astype(dtype),
        capture=capture.astype(dtype),
        polar=polar.astype(dtype),
        dmin_skip=dmin_skip,
        pos=pos,
        stol_sq=stol_sq,
    )
