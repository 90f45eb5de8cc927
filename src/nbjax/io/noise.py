"""Poisson noise images, as the C program writes ``noiseimage.img``.

Pixel values are photons (the float image), the output is detector counts:
``count = (uint16) min(poidev(photons) + adc, 65535)`` for ROI pixels, 0 outside the ROI.
"""

import numpy as np

from nbjax.errors import NBError
from nbjax.io.cformat import c_unsigned_cast
from nbjax.rng import CRandom
from nbjax.roi import Roi


def _as_image(float_image) -> np.ndarray:
    image = np.asarray(float_image, dtype=np.float32)
    if image.ndim != 2:
        raise NBError(f"noise: expected a 2-D (spixels, fpixels) image, got shape {image.shape}")
    return image


def _counts(photons: np.ndarray, adc: float, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """uint16 counts and overload count: photons+adc clamped at 65535 then C's (unsigned short)."""
    test = np.where(mask, photons + adc, 0.0)
    over = test > 65535.0
    counts = c_unsigned_cast(np.where(over, 65535.0, test), 16)
    return counts, int(np.count_nonzero(over))


def poisson_noise_image(
    float_image, seed: int, adc: float = 40.0, roi=None, rng: CRandom | None = None
) -> tuple[np.ndarray, float, int]:
    """Bit-exact C noise image.

    ``float_image``: (spixels, fpixels) float32 photons.  ``seed``: the ``-seed`` value as typed
    (C stores -seed).  ``adc``: offset in counts.  ``roi``: (xmin, xmax, ymin, ymax) inclusive, or
    None for the whole detector.  ROI pixels are visited row-major; each draws
    poidev(photons), adds it to the photon sum, adds ``adc``, is clamped at 65535 (counted as an
    overload) and cast to uint16.  Returns (uint16 image, photons sum, overloads).
    Pass the ``rng`` that ran the misset and mosaic streams to keep C's shared generator state.
    """
    image = _as_image(float_image)
    window = Roi.clip(roi, image.shape)
    rng = rng or CRandom()
    state = -int(seed)
    photons = np.zeros(image.shape)
    total = 0.0
    rows = image.astype(np.float64).tolist()
    for s in range(window.y0, window.y0 + window.ns):
        row, out_row = rows[s], photons[s]
        for f in range(window.x0, window.x0 + window.nf):
            deviate, state = rng.poidev(row[f], state)
            total += deviate
            out_row[f] = deviate
    counts, overloads = _counts(photons, adc, window.mask())
    return counts, total, overloads


def fast_poisson_noise_image(float_image, seed: int, adc: float = 40.0, roi=None):
    """Vectorized noise image with ``jax.random.poisson``: statistically equivalent to
    :func:`poisson_noise_image` (same Poisson law per pixel, same adc, clamp, cast and ROI rules;
    means above 1e6 photons use mean + sqrt(mean)*N(0,1) as C does; negative means give 0, NaN and
    inf pass through) but not bit-identical to the C stream.
    Returns (uint16 image, photons sum, overloads).
    """
    import jax
    import jax.numpy as jnp

    image = _as_image(float_image)
    mask = Roi.clip(roi, image.shape).mask()
    mean = np.where(mask & np.isfinite(image), np.maximum(image, 0.0), 0.0).astype(np.float32)
    key_poisson, key_gauss = jax.random.split(jax.random.PRNGKey(int(seed) & 0xFFFFFFFF))
    counts = jax.random.poisson(key_poisson, jnp.minimum(mean, 1e6), dtype=jnp.int32)
    gauss = mean + jnp.sqrt(mean) * jax.random.normal(key_gauss, mean.shape, dtype=jnp.float32)
    photons = np.asarray(jnp.where(mean > 1e6, gauss, counts), dtype=np.float64)
    photons = np.where(mask, np.where(np.isfinite(image), photons, image), 0.0)
    out, overloads = _counts(photons, adc, mask)
    return out, float(np.sum(photons[mask])), overloads
