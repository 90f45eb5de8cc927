"""How the samples of a pixel add up to its value: the model strategy of an Experiment.

Every pixel is a sum over sensor layers, sub-pixels, sources, phi steps and mosaic domains of

    x = F_cell(h)^2 F_latt(h)^2          (0 where d < dmin)

times r_e^2 fluence and the detector factors.  ``nbjax.strategy.AbstractAccumulation`` is the
strategy (in the style of diffrax's ``AbstractSolver``); the kernel only calls its methods, so it
has no mode branches:

* ``Physical`` (this module): the intended physics.  Every sample carries its own solid angle
  omega, polarization P and capture fraction c; sources are weighted, layers add:

      pixel = r_e^2 fluence sum_s w_s/sum(w) I_s,
      I_s   = mean_q sum_l omega c P [I_bg + mean_k x]

  where q runs over sub-pixels and k over orientations.  ``per_source`` returns the I_s
  separately (the fitting code differentiates them source by source).
* ``nbjax.ccompat.CCompatible``: the C program's behaviour, quirks included.
"""

from typing import ClassVar, final

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from nbjax.ctables.constants import R_E_SQR
from nbjax.physics import structure_factors as sf
from nbjax.physics.detector_response import polarization
from nbjax.physics.lattice import lattice_sq_in
from nbjax.samples import PixelSamples, miller_indices, orientation_matrices, pixel_samples
from nbjax.strategy import AbstractAccumulation

__all__ = ["AbstractAccumulation", "Physical", "f_cell", "source_images", "squared_amplitudes"]


def f_cell(exp, hkl, interpolated):
    """F_cell at fractional indices: nearest table entry (default_F off the table), or C's
    tricubic interpolation where ``interpolated`` is True."""
    sfac = exp.structure_factors
    if sfac.grid is None:
        return jnp.broadcast_to(sfac.default_F, hkl.shape[:-1])
    near = sf.nearest(hkl, sfac.grid, sfac.lo, sfac.hi, sfac.default_F)
    if not sfac.interpolate:
        return near
    return jnp.where(interpolated, sf.tricubic(hkl, sfac.grid, sfac.lo), near)


def squared_amplitudes(exp, s: PixelSamples, interpolated, dtype):
    """(x = F_cell^2 F_latt^2 per sample, 0 where dmin skips it; F_cell)."""
    fc = f_cell(exp, s.hkl, interpolated).astype(dtype)
    return jnp.where(s.dmin_skip[..., None], 0.0, fc * fc * s.f_latt_sq), fc


def source_images(exp, x, omega, capture, polar, dtype) -> Float[Array, "T S"]:
    """I_s = r_e^2 fluence mean_q sum_l omega c P (I_bg + mean_k x) of every pixel and source,
    from the samples' x (T, L, Q, S, K) and the factors (the physical model's sum)."""
    per_sample = exp.background + jnp.mean(x, axis=-1)  # (T, L, Q, S)
    factors = omega[..., None] * capture[..., None] * polar
    per_source = jnp.mean(jnp.sum(per_sample * factors, axis=1), axis=1)  # (T, S)
    return (R_E_SQR * exp.beam.fluence).astype(dtype) * per_source


@final
class Physical(AbstractAccumulation):
    """The intended physics (module docstring): per-sample factors, weighted sources, layers
    that tile the sensor, interpolation wherever the 4x4x4 stencil is inside the table."""

    c_compatible: ClassVar[bool] = False

    def polarization(self, exp, incident, diffracted, dmin_skip):
        beam = exp.beam
        if beam.nopolar:
            return jnp.ones(dmin_skip.shape[:1] + (1, 1, 1), diffracted.dtype)
        return polarization(incident, diffracted[:, :, :, None, :], beam.polar_vector, beam.kahn)

    def lattice_sq(self, hkl, crystal, dtype):
        return lattice_sq_in(hkl, crystal.N, crystal.fudge, crystal.recip, crystal.shape, dtype)

    def miller_indices(self, exp, diffracted, incident, inv_lambda, dmin_skip, first_pixel):
        """h = A (d - i)/lambda as (A d - A i)/lambda (``samples.miller_indices``); every pixel
        alike."""
        return miller_indices(orientation_matrices(exp.crystal, jnp.float64), diffracted, incident, inv_lambda)

    def per_source(self, exp, fpix, spix, dtype) -> Float[Array, "T S"]:
        """I_s of each pixel for each source, including r_e^2 fluence (photons per pixel for a
        source of unit normalised weight)."""
        return self._per_source(exp, pixel_samples(exp, fpix, spix, dtype), dtype)

    def _per_source(self, exp, s: PixelSamples, dtype):
        sfac = exp.structure_factors
        inside = True if sfac.grid is None else ~sf.out_of_interpolation_range(s.hkl, sfac.lo, sfac.hi)
        x, _ = squared_amplitudes(exp, s, inside, dtype)
        return source_images(exp, x, s.omega, s.capture, s.polar, dtype)

    def pixels(self, exp, fpix, spix, context, dtype):
        """pixel = sum_s w_s/sum(w) I_s, and the solid angle of every sample summed."""
        s = pixel_samples(exp, fpix, spix, dtype)
        w = exp.beam.weights / jnp.sum(exp.beam.weights)
        values = self._per_source(exp, s, dtype) @ w.astype(dtype)
        return values, jnp.sum(s.omega.reshape(s.omega.shape[0], -1), axis=1)

    def prepare(self, exp, run_stage, keep):
        """No pre-pass: every pixel is summed alike."""
        return np.zeros((2,), np.int32), None

    def finish(self, exp, values, context, run_pixel):
        """No last changes."""
        return values
