"""Raw float images (``-floatfile``): float32 little-endian, fast index varying fastest, no header.

Pixel (slow, fast) sits at index ``slow*fpixels + fast``; values are photons per pixel.
"""

import os

import numpy as np

from nbjax.errors import NBError, os_error_text, shown_path
from nbjax.io.atomic import write_bytes_atomic


def float_image_bytes(image) -> bytes:
    """A (spixels, fpixels) image as raw little-endian float32 (4*spixels*fpixels bytes)."""
    data = np.asarray(image)
    if data.ndim != 2:
        raise NBError(f"float image: expected a 2-D (spixels, fpixels) image, got shape {data.shape}")
    return np.ascontiguousarray(data, dtype="<f4").tobytes()


def write_float_image(path: str | os.PathLike, image) -> None:
    """Write :func:`float_image_bytes` to ``path`` atomically."""
    write_bytes_atomic(path, float_image_bytes(image))


def read_float_image(path: str | os.PathLike, fpixels: int | None = None, spixels: int | None = None) -> np.ndarray:
    """Read a raw float32 image as (spixels, fpixels) float32.

    Give ``fpixels`` and/or ``spixels`` to shape it; with neither, the image must be square.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    if len(data) % 4:
        raise NBError(f"{path}: {len(data)} bytes is not a whole number of 4-byte floats")
    raw = np.frombuffer(data, dtype="<f4")
    n = raw.size
    if fpixels is None and spixels is None:
        side = int(round(n**0.5))
        if side * side != n:
            raise NBError(f"{path}: {n} floats is not a square image; give fpixels and spixels")
        fpixels = spixels = side
    elif fpixels is None:
        fpixels = n // spixels if spixels else 0
    elif spixels is None:
        spixels = n // fpixels if fpixels else 0
    if fpixels <= 0 or spixels <= 0 or fpixels * spixels != n:
        raise NBError(f"{path}: holds {n} floats, not {fpixels}x{spixels}")
    return raw.reshape(spixels, fpixels).astype(np.float32)
