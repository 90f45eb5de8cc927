"""The region of interest: C's ``-roi xmin xmax ymin ymax`` (inclusive pixel indices, fast = x,
slow = y) clipped to the detector.  One type for every user: the noise, SMV and PGM writers, the
closing statistics, the bridge's metrics and the kernel's pixel window.  NumPy only (no JAX).

Pixels are numbered as C loops over them: slow-major, so flat index k of the window is pixel
``(x0 + k % nf, y0 + k // nf)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Roi:
    """The clipped window: first fast/slow pixel ``x0, y0``, its size ``nf x ns`` (0 when the ROI
    misses the detector) and the detector ``shape`` (spixels, fpixels)."""

    x0: int
    y0: int
    nf: int
    ns: int
    shape: tuple[int, int]

    @classmethod
    def clip(cls, roi, shape) -> Roi:
        """``roi`` = (xmin, xmax, ymin, ymax) inclusive, or None for the whole detector of
        ``shape`` = (spixels, fpixels)."""
        spixels, fpixels = (int(n) for n in shape)
        if roi is None:
            return cls(0, 0, fpixels, spixels, (spixels, fpixels))
        xmin, xmax, ymin, ymax = (int(v) for v in roi)
        x0, y0 = max(xmin, 0), max(ymin, 0)
        nf = max(min(xmax, fpixels - 1) + 1 - x0, 0)
        ns = max(min(ymax, spixels - 1) + 1 - y0, 0)
        return cls(x0, y0, nf, ns, (spixels, fpixels))

    @property
    def n(self) -> int:
        """Pixels in the window."""
        return self.nf * self.ns

    @property
    def empty(self) -> bool:
        return self.n == 0

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """(xmin, xmax, ymin, ymax) inclusive, as C prints and loops them (xmax < xmin if empty)."""
        return self.x0, self.x0 + self.nf - 1, self.y0, self.y0 + self.ns - 1

    @property
    def rows(self) -> slice:
        return slice(self.y0, self.y0 + self.ns)

    @property
    def cols(self) -> slice:
        return slice(self.x0, self.x0 + self.nf)

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols): ``image[roi.slices]`` is the window of a (spixels, fpixels) image."""
        return self.rows, self.cols

    def pixel(self, k):
        """(fast, slow) pixel of flat window index ``k`` (int or integer array, NumPy or JAX)."""
        return self.x0 + k % self.nf, self.y0 + k // self.nf

    def mask(self) -> np.ndarray:
        """Boolean (spixels, fpixels) array, True inside the window."""
        out = np.zeros(self.shape, dtype=bool)
        out[self.slices] = True
        return out
