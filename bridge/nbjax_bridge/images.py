"""Read float images and work out their shape (fpixels x spixels).

A float image is raw little-endian float32, fast-major (index = slow*fpixels + fast), no header.
Its shape comes from the runner's stdout line ``distance=... (FxS pixels)`` when present.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .exitcodes import InputIOError

_SHAPE_RE = re.compile(r"distance=.*?\((\d+)x(\d+) pixels\)")


def parse_shape(stdout: str) -> tuple[int, int] | None:
    """(fpixels, spixels) from the last ``distance=... (FxS pixels)`` line, or None."""
    found = None
    for line in stdout.splitlines():
        m = _SHAPE_RE.search(line)
        if m:
            found = (int(m.group(1)), int(m.group(2)))
    return found


def read_float(path: Path) -> np.ndarray:
    """The image as a flat float32 array (raises InputIOError when unreadable)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputIOError(f"cannot read float image {path}: {exc.strerror or exc}") from None
    if len(data) % 4:
        raise InputIOError(f"float image {path} has {len(data)} bytes, not a multiple of 4")
    return np.frombuffer(data, dtype="<f4").copy()


@dataclass
class Shaped:
    """Both images reshaped to (spixels, fpixels), or why that is impossible."""

    c: np.ndarray | None
    py: np.ndarray | None
    shape: tuple[int, int] | None  # (fpixels, spixels)
    mismatch: str | None = None  # human description when the shapes differ
    source: str = ""  # where the shape came from


def _fmt(shape):
    return f"{shape[0]}x{shape[1]}" if shape else "?"


def infer_shape(n: int, *hints: tuple[int, int] | None) -> tuple[tuple[int, int], str]:
    for h in hints:
        if h and h[0] * h[1] == n:
            return h, "stdout"
    r = math.isqrt(n)
    if r * r == n:
        return (r, r), "square (no stdout shape line)"
    return (n, 1), "flat (no stdout shape line)"


def shape_pair(c_flat: np.ndarray, py_flat: np.ndarray, c_stdout: str, py_stdout: str) -> Shaped:
    c_shape, py_shape = parse_shape(c_stdout), parse_shape(py_stdout)
    if c_flat.size != py_flat.size:
        return Shaped(
            None,
            None,
            None,
            f"C wrote {c_flat.size} pixels ({_fmt(c_shape)}), nbjax wrote {py_flat.size} pixels ({_fmt(py_shape)})",
        )
    if c_shape and py_shape and c_shape != py_shape:
        return Shaped(None, None, None, f"C reports {_fmt(c_shape)} pixels, nbjax reports {_fmt(py_shape)}")
    shape, source = infer_shape(c_flat.size, c_shape, py_shape)
    f, s = shape
    return Shaped(c_flat.reshape(s, f), py_flat.reshape(s, f), shape, None, source)


def reshape_one(flat: np.ndarray, stdout: str) -> np.ndarray:
    (f, s), _ = infer_shape(flat.size, parse_shape(stdout))
    return flat.reshape(s, f)
