"""Observed images for a fit: pixel values in photons, and which pixels to use.

Readers:

* SMV (``.img``, ``.smv``, or any file starting with an SMV header): 16-bit counts; photons =
  counts - ``adc`` (the C program's noise image adds ``-adc``, default 40); pixels at or above
  ``overload`` counts (65535) are masked as overloads.
* raw float32 (``.bin``, ``.raw``, ``.float``): nanoBragg's ``-floatfile`` layout, photons.
* everything fabio reads (CBF, Eiger HDF5, ...), through the optional ``fabio`` extra;
  negative pixels (detector gaps, dead pixels) are masked.

Masks combine: a mask file (SMV or raw; 0 = masked, as nanoBragg's ``-mask``), a value to mask,
a region of interest (xmin, xmax, ymin, ymax inclusive, nanoBragg's ``-roi``) and overloads.
"""

import os

import equinox as eqx
import numpy as np
from jaxtyping import Array, Bool, Float

from nbjax.errors import NBError

SMV_SUFFIXES = (".img", ".smv")
RAW_SUFFIXES = (".bin", ".raw", ".float")
OVERLOAD = 65535


class Observation(eqx.Module):
    """One observed image (photons per pixel, (slow, fast)) and its usable pixels."""

    image: Float[Array | np.ndarray, "spixels fpixels"]
    mask: Bool[Array | np.ndarray, "spixels fpixels"]  # True = use the pixel
    sigma: Float[Array | np.ndarray, "spixels fpixels"] | None = None  # per-pixel sigma for the Gaussian loss
    name: str = eqx.field(static=True, default="image")


def _is_smv(path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(12) == b"{\nHEADER_BYT"


def read_image(
    path: str | os.PathLike, shape: tuple[int, int] | None = None, adc: float = 40.0, overload: float = OVERLOAD
):
    """(photons (slow, fast) float64, usable-pixel mask) from an image file (module docstring)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise NBError(f"cannot read {path}: No such file or directory")
    suffix = os.path.splitext(path)[1].lower()
    if suffix in SMV_SUFFIXES or _is_smv(path):
        from nbjax.io.smv import read_smv

        counts = read_smv(path).data.astype(np.float64)
        return counts - adc, counts < overload
    if suffix in RAW_SUFFIXES:
        from nbjax.io.floatimage import read_float_image

        s, f = shape if shape is not None else (None, None)
        image = read_float_image(path, f, s).astype(np.float64)
        return image, np.isfinite(image)
    try:
        import fabio
    except ImportError:
        raise NBError(f"{path}: reading this format needs fabio (pip install 'nbjax[formats]')") from None
    try:
        data = np.asarray(fabio.open(path).data, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 (fabio raises many types; one line names the file)
        raise NBError(f"{path}: fabio cannot read it ({type(exc).__name__}: {exc})") from None
    return data, np.isfinite(data) & (data >= 0)


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
