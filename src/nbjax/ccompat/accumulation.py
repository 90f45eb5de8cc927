"""``CCompatible``: the C program's per-pixel accumulation, quirks included.

What nanoBragg.c does that the intended physics does not (reference D16, D19; golden cases
named per method):

* solid angle and polarization are computed once per pixel, at its first sample (first
  sub-pixel of layer 0, first source not skipped by dmin), the capture fraction at the last
  layer's first sub-pixel, and the whole sum is multiplied by them;
* ``-oversample_thick/_polar/_omega`` multiply the RUNNING sum after every sample;
* source weights are ignored (the sum is divided by ``steps``);
* the round crystal uses C's sinc3 formula, which cancels to 0 next to a peak;
* interpolation is switched off for the rest of the run at the first out-of-range sample;
* phi exactly 0 reuses the previous step's orientation, except in the run's very first phi loop.
"""

from typing import ClassVar, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from nbjax.accumulation import squared_amplitudes
from nbjax.ccompat.lattice import c_lattice_amplitude
from nbjax.ctables.constants import R_E_SQR
from nbjax.physics import structure_factors as sf
from nbjax.physics.detector_response import polarization
from nbjax.physics.lattice import lattice_sq_in
from nbjax.samples import PixelSamples, miller_indices_c_order, orientation_matrices, pixel_samples, resolution
from nbjax.strategy import AbstractAccumulation

NO_STOP = (np.iinfo(np.int32).max, 0)


@final
class CCompatible(AbstractAccumulation):
    """The C program's accumulation (module docstring)."""

    phi_first: Float[Array, " P"]  # angles of the run's first phi loop (D19); = crystal.phi normally
    recip: Float[Array, "3 3"]  # C's set-up a*, b*, c* (1/A); its roundings place the tophat edge
    first_loop_differs: bool = eqx.field(static=True, default=False)
    oversample_thick: bool = eqx.field(static=True, default=False)
    oversample_polar: bool = eqx.field(static=True, default=False)
    oversample_omega: bool = eqx.field(static=True, default=False)
    c_compatible: ClassVar[bool] = True

    def polarization(self, exp, incident, diffracted, dmin_skip):
        """Per sample with -oversample_polar (even with -nopolar: nopolar-oversample-polar-thick),
        else C's cached value at the first sample not skipped by dmin, as (T, 1, 1, 1); 0 when
        every sample is skipped (case dmin-divergence-first-source)."""
        beam = exp.beam
        if self.oversample_polar:
            return polarization(incident, diffracted[:, :, :, None, :], beam.polar_vector, beam.kahn)
        if beam.nopolar:
            return jnp.ones((dmin_skip.shape[0], 1, 1, 1), diffracted.dtype)
        T, L, Q, S = dmin_skip.shape

        def search(diffracted, incident):  # dmin_skip again, from the small per-pixel and per-source arrays
            skip = resolution(exp, diffracted, incident, 1.0 / beam.wavelengths)[1]
            return first_unskipped_index(skip).astype(jnp.int32), jnp.any(~skip.reshape(T, -1), axis=1)

        # without -dmin nothing is skipped: the first sample, no search (512^2 x 100 samples, single
        # precision: 0.148 -> 0.128 s)
        first, computed = jax.lax.cond(
            exp.dmin > 0.0, search, lambda *_: (jnp.zeros(T, jnp.int32), jnp.ones(T, bool)), diffracted, incident
        )
        t = jnp.arange(T)
        d = diffracted[t, first // (Q * S), (first // S) % Q]
        polar = jnp.where(computed, polarization(incident[first % S], d, beam.polar_vector, beam.kahn), 0.0)
        return polar[:, None, None, None]

    def lattice_sq(self, hkl, crystal, dtype):
        """Square: reduced indices in ``dtype``; other shapes in float64 so the tophat threshold
        falls where C's doubles put it (with C's own reciprocal vectors:
        tophat-mosaic-misset-random); round with C's sinc3 (round-xtal-beam-on-pixel)."""
        if crystal.shape == "square":
            return lattice_sq_in(hkl, crystal.N, crystal.fudge, self.recip, "square", dtype)
        f = c_lattice_amplitude(hkl, crystal.N, crystal.shape, crystal.fudge, self.recip)
        return (f * f).astype(dtype)

    def miller_indices(self, exp, diffracted, incident, inv_lambda, dmin_skip, first_pixel):
        """C's order of operations (S = (d - i)/lambda first: exact zeros on the direct beam);
        in the run's first pixel, C's first executed phi loop (first sample not skipped by
        dmin) uses the true angles ``phi_first`` (quirk-phi-zero-reuse, phi-zero-middle-step)."""
        hkl = miller_indices_c_order(orientation_matrices(exp.crystal, jnp.float64), diffracted, incident, inv_lambda)
        if not first_pixel:
            return hkl
        first_mats = orientation_matrices(exp.crystal, jnp.float64, self.phi_first)
        hkl_first = miller_indices_c_order(first_mats, diffracted, incident, inv_lambda)
        group = (
            jnp.arange(np.prod(dmin_skip.shape[1:])).reshape(dmin_skip.shape[1:])
            == first_unskipped_index(dmin_skip)[:, None, None, None]
        )
        return jnp.where(group[..., None, None], hkl_first, hkl)

    def pixels(self, exp, fpix, spix, context, dtype):
        """C's pixel values: r_e^2 fluence I / steps times the cached factors (``pixel_sum``),
        interpolating structure factors up to the stop ``context`` found by ``prepare``."""
        return self._pixels(exp, fpix, spix, context, dtype, first_pixel=False)

    def first_pixel(self, exp, fpix, spix, context, dtype):
        """Stage: ``pixels`` of the run's first rendered pixel, whose first phi loop runs at
        ``phi_first`` (quirk-phi-zero-reuse)."""
        return self._pixels(exp, fpix, spix, context, dtype, first_pixel=True)

    def first_out_of_range(self, exp, fpix, spix, context, dtype):
        """Stage: per pixel, the first sample index at which C's interpolation range test fails
        (the number of samples when it never does)."""
        s = pixel_samples(exp, fpix, spix, dtype)
        sfac = exp.structure_factors
        oor = sf.out_of_interpolation_range(s.hkl, sfac.lo, sfac.hi) & _reaches_f_cell(exp, s)
        flat = oor.reshape(oor.shape[0], -1)
        return jnp.where(jnp.any(flat, axis=1), jnp.argmax(flat, axis=1), flat.shape[1])

    def _pixels(self, exp, fpix, spix, context, dtype, first_pixel):
        s = pixel_samples(exp, fpix, spix, dtype, first_pixel=first_pixel)
        n_eval = int(np.prod(s.hkl.shape[1:-1]))
        imgidx = (spix * exp.detector.fpixels + fpix)[:, None, None, None, None]
        eval_idx = jnp.arange(n_eval).reshape(s.hkl.shape[1:-1])
        interpolated = (imgidx < context[0]) | ((imgidx == context[0]) & (eval_idx < context[1]))
        x, _ = squared_amplitudes(exp, s, interpolated, dtype)
        accumulated, factor = self.pixel_sum(exp, x, s)
        value = (R_E_SQR * exp.beam.fluence).astype(dtype) * (accumulated / exp.steps * factor)
        return value, self.solid_angle_sum(s.omega)

    def pixel_sum(self, exp, x, s: PixelSamples):
        """C's accumulation I and the cached factor it is multiplied by (pixel = r_e^2 fluence
        I / steps * factor).

        I = I_bg + sum x, times the FIRST sample's solid angle and polarization and the LAST
        layer's capture fraction (oversample-2, polar-kahn, absorption-thickness).  With
        -oversample_thick/_polar/_omega C multiplies the RUNNING SUM after every addition,
        I = (I + x) m, so earlier samples are scaled again and again (oversample-3-omega-polar,
        absorption-oversample-thick).
        """
        T = x.shape[0]
        cached = {
            "thick": s.capture[:, -1, 0],
            "polar": first_unskipped_polar(s.polar, s.dmin_skip),
            "omega": s.omega[:, 0, 0],
        }
        flags = {"thick": self.oversample_thick, "polar": self.oversample_polar, "omega": self.oversample_omega}
        if not any(flags.values()):
            intensity = exp.background + sample_sum(x.reshape(T, -1))
        else:
            reaches = _reaches_f_cell(exp, s)
            m = jnp.ones_like(x)
            if flags["thick"]:
                m = m * s.capture[:, :, :, None, None]
            if flags["polar"]:
                m = m * s.polar[..., None]
            if flags["omega"]:
                m = m * s.omega[:, :, :, None, None]
            m = jnp.where(reaches, m, 1.0).reshape(T, -1)
            xs = jnp.where(reaches, x, 0.0).reshape(T, -1)
            suffix = jnp.flip(jnp.cumprod(jnp.flip(m, axis=1), axis=1), axis=1)  # prod_{j >= n} m_j
            intensity = exp.background * suffix[:, 0] + jnp.sum(xs * suffix, axis=1)
        factor = 1.0
        for name, on in flags.items():
            if not on:
                factor = factor * cached[name]
        return intensity, factor

    def solid_angle_sum(self, omega):
        """C adds the cached solid angle once per sub-pixel and layer (D16), or the fresh
        values with -oversample_omega; printed as 'solid angle subtended by detector'."""
        if self.oversample_omega:
            return jnp.sum(omega.reshape(omega.shape[0], -1), axis=1)
        return omega[:, 0, 0] * (omega.shape[1] * omega.shape[2])

    def prepare(self, exp, run_stage, keep):
        """C's global cut-off for interpolation (hkl-interpolate-out-of-range): (imgidx, sample
        index) of the first out-of-range sample in loop order, and outside a trace that pixel
        and its Miller indices for C's warning."""
        none = np.array(NO_STOP, dtype=np.int32)
        sfac = exp.structure_factors
        if sfac.grid is None or not sfac.interpolate:
            return none, None
        first, window = run_stage(CCompatible.first_out_of_range)
        hit = first < exp.steps * exp.detector.layers
        if keep is not None:
            hit = hit & keep
        k = jnp.argmax(hit)
        f, s = window.pixel(k)
        any_hit = jnp.any(hit)
        stop = jnp.where(any_hit, jnp.stack([s * exp.detector.fpixels + f, first[k]]).astype(jnp.int32), none)
        try:
            if not bool(any_hit):
                return stop, None
        except jax.errors.ConcretizationTypeError:
            return stop, None
        hkl = np.asarray(
            _sample_hkl(exp, jnp.atleast_1d(f).astype(jnp.int32), jnp.atleast_1d(s).astype(jnp.int32), first[k])
        )
        return stop, {"pixel": (int(f), int(s)), "hkl": tuple(float(x) for x in hkl)}

    def finish(self, exp, values, context, run_pixel):
        """The run's first rendered pixel again, with its first phi loop at ``phi_first``."""
        if not self.first_loop_differs:
            return values
        k, v1 = run_pixel(CCompatible.first_pixel)
        return values.at[k].set(v1)


def sample_sum(flat):
    """sum(flat, axis=1), as partial sums over k interleaved groups of samples and a product
    with ones(k).  Summed directly, XLA:CPU fuses the sum into the tile map's in-place output
    and runs it as one scalar loop per pixel; this way the samples go through a vectorized,
    parallel reduction (C-compatible 512^2 x 25 sources x 4 sub-pixels, one device: 0.36 ->
    0.15 s single, 0.43 -> 0.16 s double; 2048^2 x 1 sample, padded: 0.19 -> 0.14 s).  The
    order of the additions differs from C's (as background + sum already did); measured on
    the 77 golden and extra cases, the float64 images stay as bit-identical to C's as before
    (76; polar-kahn differs by 5.5e-14 in one pixel), and tests/test_golden_float.py holds."""
    n = flat.shape[1]
    k = next((k for k in range(min(n, 32), 1, -1) if n % k == 0), 1)
    if k == 1:  # one sample, or a prime count above 32: zeros (exact) up to a multiple of 8
        k = 8
        flat = jnp.pad(flat, ((0, 0), (0, -n % k)))
        n = flat.shape[1]
    return jnp.sum(flat.reshape(flat.shape[0], n // k, k), axis=1) @ jnp.ones(k, flat.dtype)


def first_unskipped_index(skip):
    """Per pixel, the flat (layer, sub-pixel, source) index of the first sample in C loop order
    not skipped by dmin: where C computes the polarization and runs its first phi loop."""
    return jnp.argmax(~skip.reshape(skip.shape[0], -1), axis=1)


def first_unskipped_polar(polar, skip):
    """Polarization of the first (layer, sub-pixel, source) in C loop order not skipped by dmin
    (``polar`` is per sample, or already that single value as (T, 1, 1, 1))."""
    if polar.shape[1:] == (1, 1, 1):
        return polar[:, 0, 0, 0]
    idx = first_unskipped_index(skip)
    return jnp.take_along_axis(polar.reshape(polar.shape[0], -1), idx[:, None], axis=1)[:, 0]


def _reaches_f_cell(exp, s: PixelSamples):
    """Samples on which C gets as far as the structure factor (not skipped by dmin, nor by
    F_latt == 0 without water background)."""
    skipped = s.dmin_skip[..., None] | ((s.f_latt_sq == 0.0) & (exp.background == 0.0))
    return ~skipped


@jax.jit
def _sample_hkl(exp, fpix, spix, eval_index):
    """Fractional Miller indices of one sample of one pixel (for C's warning text)."""
    return pixel_samples(exp, fpix, spix, jnp.float64).hkl.reshape(-1, 3)[eval_index]
