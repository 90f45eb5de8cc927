"""The Experiment pytree: everything the kernel reads, as equinox modules.

Continuous quantities are array leaves so ``jax.grad`` reaches them (source directions and
wavelengths, weights, cell vectors, distance, Kahn factor, fluence, ...); counts, shapes and
modes are static fields.  Units: metres, radians, photons/m^2.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from nbjax.strategy import AbstractAccumulation


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
    N: Float[Array, "3"]
    fudge: Float[Array, ""]
    spindle: Float[Array, "3"]
    phi: Float[Array, " P"]
    mosaic_umats: Float[Array, "M 3 3"]
    shape: str = eqx.field(static=True)

    @property
    def recip(self) -> Float[Array, "3 3"]:
        """Rows a*, b*, c* (1/A) of the unrotated cell, a* = (b x c)/V, for the round, gauss and
        tophat spot shapes.  Derived from a, b, c, so it never goes stale."""
        cell = jnp.stack([self.a, self.b, self.c]) * 1e10
        cross = jnp.stack([jnp.cross(cell[1], cell[2]), jnp.cross(cell[2], cell[0]), jnp.cross(cell[0], cell[1])])
        return cross / jnp.dot(cell[0], cross[0])


class StructureFactors(eqx.Module):
    """Padded F grid over [lo, hi] (or none), and default_F everywhere else."""

    default_F: Float[Array, ""]
    grid: Float[Array, "Nh Nk Nl"] | None
    lo: tuple = eqx.field(static=True)
    hi: tuple = eqx.field(static=True)
    interpolate: bool = eqx.field(static=True)


class Experiment(eqx.Module):
    """One diffraction image's worth of inputs, and the model that sums them (``model``: the
    intended physics, ``nbjax.Physical()``, or the C program's behaviour,
    ``nbjax.ccompat.CCompatible``)."""

    detector: Detector
    beam: Beam
    crystal: Crystal
    structure_factors: StructureFactors
    background: Float[Array, ""]  # water I_bg per pixel, in F^2 units
    dmin: Float[Array, ""]  # m; 0 = off
    mask: Array | None  # (spixels, fpixels), 0 = skip
    model: "AbstractAccumulation"  # forward reference (nbjax.accumulation imports this module): not run-time checked
    roi: tuple = eqx.field(static=True)  # xmin, xmax, ymin, ymax inclusive

    @property
    def steps(self) -> int:
        """C's normalisation: sources x mosaic domains x phi steps x oversample^2."""
        d, c = self.detector, self.crystal
        return self.beam.wavelengths.shape[0] * c.mosaic_umats.shape[0] * c.phi.shape[0] * d.oversample**2

    @property
    def samples_per_pixel(self) -> int:
        """Evaluations per pixel: sensor layers x steps (sub-pixels, sources, phi, mosaic)."""
        return self.detector.layers * self.steps

    @property
    def physical(self) -> bool:
        """True when the intended physics sums this image (not the C program's behaviour)."""
        return not self.model.c_compatible
