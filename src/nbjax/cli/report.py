"""Image statistics exactly as the C program computes and prints them at the end of a run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nbjax.io.cformat import cformat_g as g


@dataclasses.dataclass
class ImageStats:
    max_I: float
    max_I_x: float  # m, Fdet of the max pixel's last sub-pixel
    max_I_y: float
    mean: float
    rms: float
    rmsd: float


def roi_slices(roi, shape):
    xmin, xmax, ymin, ymax = roi
    return slice(max(ymin, 0), min(ymax, shape[0] - 1) + 1), slice(max(xmin, 0), min(xmax, shape[1] - 1) + 1)


def image_stats(image32: np.ndarray, roi, mask, pixel_size: float, oversample: int) -> ImageStats:
    """C's statistics of the float32 image.

    mean = sum/N and rms = sqrt(sum x^2/(N-1)) over unmasked ROI pixels; rmsd over all ROI
    pixels, masked ones counting as 0 (D26); N <= 1 is replaced by 2 in the denominators.
    max_I is the first maximum in C order; its location is the (Fdet, Sdet) of that pixel's
    last sub-pixel, (pixel + (os - 0.5)/os) * pixel_size.
    """
    rows, cols = roi_slices(roi, image32.shape)
    block = image32[rows, cols].astype(np.float64)
    keep = np.ones(block.shape, bool) if mask is None else np.asarray(mask)[rows, cols] != 0
    values = block[keep]
    n = max(values.size, 1)
    total = float(np.sum(values))
    mean = total / n
    rms = math.sqrt(float(np.sum(values * values)) / (max(values.size, 2) - 1))
    dev = block - mean
    rmsd = math.sqrt(float(np.sum(dev * dev)) / (max(block.size, 2) - 1))
    max_I, mx, my = 0.0, 0.0, 0.0
    masked = np.where(keep, block, -np.inf)
    if values.size and masked.max() > 0.0:
        idx = int(np.argmax(masked))
        s, f = divmod(idx, block.shape[1])
        sub = pixel_size / oversample
        last = lambda p: sub * (p * oversample + oversample - 1) + sub / 2.0  # noqa: E731
        max_I, mx, my = float(masked.max()), last(f + cols.start), last(s + rows.start)
    return ImageStats(max_I, mx, my, mean, rms, rmsd)


def stats_lines(stats: ImageStats) -> list[str]:
    return [f"max_I = {g(stats.max_I)}  at {g(stats.max_I_x)} {g(stats.max_I_y)}", f"mean= {g(stats.mean)} rms= {g(stats.rms)} rmsd= {g(stats.rmsd)}"]


def solid_angle_line(omega_total: float, steps: int) -> str:
    sr = omega_total / steps
    return f"solid angle subtended by detector = {g(sr)} steradian ( {g(100 * sr / 4 / math.pi)}% sphere)"
