"""Grey-scale PNG previews written with zlib + struct (no imaging library).

Rows of the PNG are detector rows (slow axis), left to right is the fast axis.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_gray8(pixels: np.ndarray) -> bytes:
    """PNG bytes for a 2-D uint8 array (colour type 0, bit depth 8, filter 0 on every row)."""
    a = np.ascontiguousarray(pixels, dtype=np.uint8)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError("need a non-empty 2-D array")
    h, w = a.shape
    raw = np.zeros((h, w + 1), dtype=np.uint8)
    raw[:, 1:] = a
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _chunk(b"IEND", b"")


def log_stretch(img: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.9) -> np.ndarray:
    """uint8 with a log stretch between two percentiles of the finite pixels; NaN -> 0."""
    x = np.asarray(img, dtype=np.float64)
    finite = np.isfinite(x)
    out = np.zeros(x.shape, dtype=np.uint8)
    if not finite.any():
        return out
    lo, hi = np.percentile(x[finite], [lo_pct, hi_pct])
    if hi <= lo:
        hi = x[finite].max()
    if hi <= lo:
        out[finite] = 128 if lo != 0 else 0
        return out
    t = np.clip((x[finite] - lo) / (hi - lo), 0.0, 1.0)
    k = 1000.0
    out[finite] = np.round(255.0 * np.log1p(k * t) / np.log1p(k)).astype(np.uint8)
    return out


def signed_stretch(diff: np.ndarray, pct: float = 99.9) -> np.ndarray:
    """uint8 for a signed difference: 128 = 0, clipped at the pct percentile of |diff|; NaN -> 0."""
    d = np.asarray(diff, dtype=np.float64)
    finite = np.isfinite(d)
    out = np.zeros(d.shape, dtype=np.uint8)
    if not finite.any():
        return out
    m = float(np.percentile(np.abs(d[finite]), pct))
    if m == 0.0:
        m = float(np.abs(d[finite]).max())
    if m == 0.0:
        out[finite] = 128
        return out
    out[finite] = np.round(128.0 + 127.0 * np.clip(d[finite] / m, -1.0, 1.0)).astype(np.uint8)
    return out


def write_png(path: Path, pixels: np.ndarray) -> None:
    Path(path).write_bytes(encode_gray8(pixels))


def write_image_preview(path: Path, img: np.ndarray) -> None:
    write_png(path, log_stretch(img))


def write_diff_preview(path: Path, c: np.ndarray, py: np.ndarray) -> None:
    write_png(path, signed_stretch(np.asarray(py, np.float64) - np.asarray(c, np.float64)))
