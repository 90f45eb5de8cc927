"""Image statistics exactly as the C program computes and prints them at the end of a run."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nbjax.io.cformat import cformat_g as g
from nbjax.roi import Roi


@dataclasses.dataclass
class ImageStats:
    max_I: float
    max_I_x: float  # m, Fdet of the max pixel's last sub-pixel
    max_I_y: float
    mean: float
    rms: float
    rmsd: float


def _row_chunks(rows: slice, width: int):
    """Row slices of at most ~1M pixels, so temporaries stay small on big detectors."""
    step = max(1, (1 << 20) // max(width, 1))
    for y0 in range(rows.start, rows.stop, step):
        yield slice(y0, min(y0 + step, rows.stop))


def image_stats(image32: np.ndarray, roi, mask, pixel_size: float, oversample: int) -> ImageStats:
    """C's statistics of the float32 image.

    mean = sum/N and rms = sqrt(sum x^2/(N-1)) over unmasked ROI pixels; rmsd over all ROI
    pixels, masked ones counting as 0 (D26); N <= 1 is replaced by 2 in the denominators.
    max_I is the first maximum in C order; its location is the (Fdet, Sdet) of that pixel's
    last sub-pixel, (pixel + (os - 0.5)/os) * pixel_size.  As in C, each pixel is squared in
    float32 for rms and every sum runs in C's pixel order in float64.
    """
    rows, cols = Roi.clip(roi, image32.shape).slices
    total = total_sq = 0.0
    count = 0
    max_I, max_at = 0.0, None
    for r in _row_chunks(rows, image32.shape[1]):
        block32 = image32[r, cols]
        values32 = block32.reshape(-1) if mask is None else block32[np.asarray(mask)[r, cols] != 0]
        block = block32.astype(np.float64)
        values = values32.astype(np.float64)
        total = _ordered_sum(total, values)
        total_sq = _ordered_sum(total_sq, (values32 * values32).astype(np.float64))  # C: float*float
        count += values.size
        if values.size and values.max() > max_I:
            masked = block if mask is None else np.where(np.asarray(mask)[r, cols] != 0, block, -np.inf)
            s, f = divmod(int(np.argmax(masked)), block.shape[1])
            max_I, max_at = float(masked.max()), (f + cols.start, s + r.start)
    mean = total / max(count, 1)
    rms = math.sqrt(total_sq / (max(count, 2) - 1))
    dev_sq, n_roi = 0.0, 0
    for r in _row_chunks(rows, image32.shape[1]):
        dev = image32[r, cols].astype(np.float64).reshape(-1) - mean
        dev_sq = _ordered_sum(dev_sq, dev * dev)
        n_roi += dev.size
    rmsd = math.sqrt(dev_sq / (max(n_roi, 2) - 1))
    mx = my = 0.0
    if max_at is not None:
        sub = pixel_size / oversample
        mx, my = (sub * (p * oversample + oversample - 1) + sub / 2.0 for p in max_at)
    return ImageStats(max_I, mx, my, mean, rms, rmsd)


def _ordered_sum(start: float, values: np.ndarray) -> float:
    """start + v0 + v1 + ... added one by one in float64, as C's loop adds them."""
    if values.size == 0:
        return start
    return float(np.cumsum(np.concatenate([[start], values]))[-1])


def stats_lines(stats: ImageStats) -> list[str]:
    return [
        f"max_I = {g(stats.max_I)}  at {g(stats.max_I_x)} {g(stats.max_I_y)}",
        f"mean= {g(stats.mean)} rms= {g(stats.rms)} rmsd= {g(stats.rmsd)}",
    ]


def solid_angle_line(omega_total: float, steps: int) -> str:
    sr = omega_total / steps
    return f"solid angle subtended by detector = {g(sr)} steradian ( {g(100 * sr / 4 / math.pi)}% sphere)"
