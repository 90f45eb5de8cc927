"""Binary PGM preview (``-pgmfile``), byte for byte as the C program writes it.

``P5\\n<fpixels> <spixels>\\n# pixels scaled by <%g scale>\\n255\\n`` then one byte per pixel:
``(unsigned char) min(255, photons*pgm_scale)`` (truncation) inside the ROI, 0 outside.
"""

import os

import numpy as np

from nbjax.errors import NBError
from nbjax.io.atomic import write_bytes_atomic
from nbjax.io.cformat import c_unsigned_cast, cformat_g
from nbjax.roi import Roi


def auto_pgm_scale(rmsd: float, intfile_scale: float) -> float:
    """C's automatic ``-pgmscale``: 250/(5*rmsd) grey levels per photon, or intfile_scale when
    rmsd is not positive."""
    return 250.0 / (5.0 * rmsd) if rmsd > 0.0 else intfile_scale


def pgm_bytes(float_image, pgm_scale: float, roi=None) -> bytes:
    """The whole PGM file for a (spixels, fpixels) photon image (bytes: C's ``(unsigned char)``,
    see :func:`nbjax.io.cformat.c_unsigned_cast`)."""
    image = np.asarray(float_image, dtype=np.float32)
    if image.ndim != 2:
        raise NBError(f"PGM: expected a 2-D (spixels, fpixels) image, got shape {image.shape}")
    test = image.astype(np.float64) * float(pgm_scale)
    test = np.where(test > 255.0, 255.0, test)
    pixels = np.where(Roi.clip(roi, image.shape).mask(), c_unsigned_cast(test, 8), 0).astype(np.uint8)
    spixels, fpixels = image.shape
    header = f"P5\n{fpixels} {spixels}\n# pixels scaled by {cformat_g(pgm_scale)}\n255\n"
    return header.encode("ascii") + pixels.tobytes()


def write_pgm(path: str | os.PathLike, float_image, pgm_scale: float, roi=None) -> None:
    """Write :func:`pgm_bytes` to ``path`` atomically."""
    write_bytes_atomic(path, pgm_bytes(float_image, pgm_scale, roi))
