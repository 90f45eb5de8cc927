"""The Experiment pytree: everything the kernel reads, as equinox modules.

Continuous quantities are array leaves so ``jax.grad`` reaches them (source directions and
wavelengths, weights, cell vectors, distance, Kahn factor, fluence, ...); counts, shapes and
modes are static fields.  Units: metres, radians, photons/m^2.
"""

from __future__ import annotations

import equinox as eqx
import numpy as np
from jaxtyping import Array, Float

R_E_SQR = 7.94079248018965e-30  # Thomson cross section r_e^2, m^2


class Detector(eqx.Module):
    """Flat (or curved) pixel array.  pix0 = pix0_offset + distance * pivot_axis.

    ``distance`` is the pivot distance: sample to beam spot along the beam (pivot BEAM) or the
    pre-rotation near-point distance (pivot SAMPLE), so its gradient is d/d(-distance).
    """

    fdet: Float[Array, "3"]
    sdet: Float[Array, "3"]
    odet: Float[Array, "3"]
    beam: Float[Array, "3"]
    pix0_offset: Float[Array, "3"]
    pivot_axis: Float[Array, "3"]
    distance: Float[Array, ""]
    ratio: Float[Array, ""]  # beam . normal (rotations without two-theta), C's distance ratio
    pixel_size: Float[Array, ""]
    fast_positions: Float[Array, " Fos"]  # sub-pixel centres along fdet, m (see subpixel_centres)
    slow_positions: Float[Array, " Sos"]
    layer_step: Float[Array, ""]  # sensor layer spacing, m
    mu: Float[Array, ""]  # sensor attenuation, 1/m
    fpixels: int = eqx.field(static=True)
    spixels: int = eqx.field(static=True)
    oversample: int = eqx.field(static=True)
    layers: int = eqx.field(static=True)
    thick: bool = eqx.field(static=True)  # sensor absorption modelled
    curved: bool = eqx.field(static=True)
    point_pixel: bool = eqx.field(static=True)

    @property
    def pix0(self):
        return self.pix0_offset + self.distance * self.pivot_axis


def subpixel_centres(pixel_size: float, pixels: int, oversample: int) -> np.ndarray:
    """Sub-pixel centres along one detector axis (m), as C computes them in double precision:
    subpixel_size*(pixel*oversample + sub) + subpixel_size/2.0.  Made on the host, where no
    fused multiply-add can round them differently (that moves a sub-pixel onto the beam)."""
    sub = pixel_size / oversample
    return sub * np.arange(pixels * oversample, dtype=np.float64) + sub / 2.0


class Beam(eqx.Module):
    """Sources: unit vectors from the sample towards each source, wavelengths (m), weights."""

    directions: Float[Array, "S 3"]
    wavelengths: Float[Array, " S"]
    weights: Float[Array, " S"]
    polar_vector: Float[Array, "3"]
    kahn: Float[Array, ""]
    fluence: Float[Array, ""]
    nopolar: bool = eqx.field(static=True)


class Crystal(eqx.Module):
    """Unrotated lattice (m), spindle phi angles (rad) and mosaic domain rotations."""

    a: Float[Array, "3"]
    b: Float[Array, "3"]
    c: Float[Array, "3"]
    recip: Float[Array, "3 3"]  # rows a*, b*, c* in 1/A, for the round/gauss/tophat shapes
    N: Float[Array, "3"]
    fudge: Float[Array, ""]
    spindle: Float[Array, "3"]
    phi: Float[Array, " P"]
    phi_first: Float[Array, " P"]  # angles of the run's first phi loop (C quirk D19); = phi normally
    mosaic_umats: Float[Array, "M 3 3"]
    shape: str = eqx.field(static=True)
    first_loop_differs: bool = eqx.field(static=True, default=False)  # phi_first != phi


class StructureFactors(eqx.Module):
    """Padded F grid over [lo, hi] (or none), and default_F everywhere else."""

    default_F: Float[Array, ""]
    grid: Float[Array, "H K L"] | None
    lo: tuple = eqx.field(static=True)
    hi: tuple = eqx.field(static=True)
    interpolate: bool = eqx.field(static=True)


class Experiment(eqx.Module):
    """One diffraction image's worth of inputs."""

    detector: Detector
    beam: Beam
    crystal: Crystal
    structure_factors: StructureFactors
    background: Float[Array, ""]  # water I_bg per pixel, in F^2 units
    dmin: Float[Array, ""]  # m; 0 = off
    mask: Array | None  # (spixels, fpixels), 0 = skip
    roi: tuple = eqx.field(static=True)  # xmin, xmax, ymin, ymax inclusive
    oversample_thick: bool = eqx.field(static=True)
    oversample_polar: bool = eqx.field(static=True)
    oversample_omega: bool = eqx.field(static=True)
    physical: bool = eqx.field(static=True)

    @property
    def steps(self):
        """C's normalisation: sources x mosaic domains x phi steps x oversample^2."""
        d, c = self.detector, self.crystal
        return self.beam.wavelengths.shape[0] * c.mosaic_umats.shape[0] * c.phi.shape[0] * d.oversample**2
