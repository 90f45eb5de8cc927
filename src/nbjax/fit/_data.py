"""Observed images for a fit: pixel values in photons, and which pixels to use.

Images are read by :func:`nbjax.io.images.read_images` (the one image reader), one panel each:

* SMV (``.smv``, or any file starting with an SMV header, as nanoBragg's ``.img``): 16-bit
  counts; photons = counts - ``adc`` (the C program's noise image adds ``-adc``, default 40);
  pixels at or above ``overload`` counts (65535) are masked as overloads.
* raw float32 (``.bin``, ``.raw``, ``.float``): nanoBragg's ``-floatfile`` layout, photons.
* every other format ``read_images`` reads (CBF through fabio or pycbf, HDF5/NeXus through h5py,
  ``.npy``, and what fabio reads: the optional ``formats`` and ``cbf`` extras), in photons as
  stored; non-finite and negative pixels (detector gaps, dead pixels) are masked.

Masks combine: a mask file (any of these formats; 0 = masked, as nanoBragg's ``-mask``), a value to mask,
a region of interest (xmin, xmax, ymin, ymax inclusive, nanoBragg's ``-roi``) and overloads.
"""

import os

import equinox as eqx
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from nbjax.errors import NBError

OVERLOAD = 65535


class Observation(eqx.Module):
    """One observed image (photons per pixel, (slow, fast)) and its usable pixels."""

    image: Float[Array | np.ndarray, "spixels fpixels"]
    mask: Bool[Array | np.ndarray, "spixels fpixels"]  # True = use the pixel
    sigma: Float[Array | np.ndarray, "spixels fpixels"] | None = None  # per-pixel sigma for the Gaussian loss
    name: str = eqx.field(static=True, default="image")
    shoebox: Int[Array | np.ndarray, "spixels fpixels"] | None = (
        None  # per pixel its shoebox (-1: none), for BackgroundPlanes
    )
    offsets: Float[Array | np.ndarray, "2 spixels fpixels"] | None = (
        None  # per pixel (dx, dy) from its shoebox centre, pixels
    )
    reflection: Int[Array | np.ndarray, "spixels fpixels"] | None = (
        None  # per pixel its reflection slot (-1: none), for ReflectionFactors
    )


def read_image(
    path: str | os.PathLike, shape: tuple[int, int] | None = None, adc: float = 40.0, overload: float = OVERLOAD
):
    """(photons (slow, fast) float64, usable-pixel mask) from an image file (module docstring),
    read by :func:`nbjax.io.images.read_images`."""
    from nbjax.io.images import _image_kind, read_images

    path = os.fspath(path)
    kind = _image_kind(path)  # FILE or FILE.h5:/dataset; a missing file is an NBError naming it
    if kind == "smv":
        # counts - adc; usable below the overload (read_images' trusted range is inclusive)
        below = float(np.nextafter(overload, -np.inf))
        stack = read_images(path, pedestal=adc, trusted_range=(-np.inf, below))
        return stack.data[0], stack.mask[0]
    if kind == "raw":
        stack = read_images(path, panels=None if shape is None else (1, *shape))
        return stack.data[0], stack.mask[0]
    stack = read_images(path)
    if stack.data.shape[0] != 1:
        raise NBError(f"{stack.sources[0]}: {stack.data.shape[0]} panels; a fit reads one-panel images")
    data = stack.data[0]
    return data, stack.mask[0] & (data >= 0)


def build_mask(shape, usable=None, mask_file=None, roi=None) -> np.ndarray:
    """The pixels to fit: ``usable`` (from the reader), the mask file's non-zero pixels, within
    ``roi`` (xmin, xmax, ymin, ymax inclusive)."""
    keep = np.ones(shape, bool) if usable is None else np.asarray(usable, bool).copy()
    if mask_file is not None:
        m, _ = read_image(mask_file, shape, adc=0.0, overload=np.inf)
        if m.shape != tuple(shape):
            raise NBError(f"{mask_file}: mask is {m.shape[1]}x{m.shape[0]} pixels, the data {shape[1]}x{shape[0]}")
        keep &= m != 0
    if roi is not None:
        xmin, xmax, ymin, ymax = roi
        fast = np.arange(shape[1])
        slow = np.arange(shape[0])[:, None]
        keep &= (fast >= xmin) & (fast <= xmax) & (slow >= ymin) & (slow <= ymax)
    return keep


def observation(
    path, shape=None, *, adc=40.0, mask_file=None, mask_value=None, roi=None, sigma=None, name=None
) -> Observation:
    """Read an observed image and build its mask (module docstring); ``mask_value`` drops the
    pixels whose value (in photons, after the ADC offset) equals it."""
    image, usable = read_image(path, shape, adc=adc)
    if shape is not None and image.shape != tuple(shape):
        raise NBError(
            f"{path}: image is {image.shape[1]}x{image.shape[0]} pixels, the model detector {shape[1]}x{shape[0]}"
        )
    keep = build_mask(image.shape, usable, mask_file, roi=roi)
    if mask_value is not None:
        keep &= image != mask_value
    if not keep.any():
        raise NBError(f"{path}: no usable pixels after masking")
    return Observation(image=image, mask=keep, sigma=sigma, name=name or os.path.basename(os.fspath(path)))
