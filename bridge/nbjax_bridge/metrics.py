"""Image agreement metrics (pure NumPy, float64).

All metrics use the pixels that are finite in both images (inside the ROI when one is given);
non-finite pixels are counted separately and any pixel finite on one side only fails the check.
"""

from __future__ import annotations

import math

import numpy as np

from nbjax.roi import Roi

DEFAULT_THRESHOLD = 0.999  # Pearson correlation must be >= this
DEFAULT_SUM_TOL = 3e-3  # |sum ratio - 1| must be <= this
N_PEAKS = 20
PEAK_GATE = 1.5  # pixels


def roi_slice(shape_sf: tuple[int, int], roi) -> tuple[slice, slice]:
    """(rows, cols) slices for roi = (x0, x1, y0, y1), fast = x, slow = y, inclusive like C's -roi.

    Clipped to the image; raises ValueError when nothing is left.
    """
    window = Roi.clip(roi, shape_sf)
    if window.empty:
        s, f = shape_sf
        raise ValueError(f"ROI {tuple(roi)} does not overlap the {f}x{s} image")
    return window.slices


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images (float64, flattened): the one implementation nbjax's
    tests, scripts and bridge use.

    Exactly 1.0 for identical inputs (checked first, so rounding cannot give 0.9999999999999998;
    this includes two identical constant images), NaN when empty or when only one is constant,
    otherwise clamped to [-1, 1].
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size == 0 or a.shape != b.shape:
        return math.nan
    if np.array_equal(a, b):
        return 1.0
    da, db = a - a.mean(), b - b.mean()
    na, nb = math.sqrt(float(np.dot(da, da))), math.sqrt(float(np.dot(db, db)))
    if na == 0.0 or nb == 0.0:
        return math.nan
    return float(min(1.0, max(-1.0, np.dot(da, db) / (na * nb))))


def maximum_filter3(img: np.ndarray) -> np.ndarray:
    """3x3 maximum filter (edges padded with -inf; NaN treated as -inf)."""
    x = np.where(np.isfinite(img), img, -np.inf).astype(np.float64)
    p = np.pad(x, 1, mode="constant", constant_values=-np.inf)
    s, f = x.shape
    out = np.full_like(x, -np.inf)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            np.maximum(out, p[dy : dy + s, dx : dx + f], out=out)
    return out


def local_maxima(img: np.ndarray, n: int = N_PEAKS) -> list[tuple[int, int, float]]:
    """Top n local maxima (row, col, value), brightest first; flat floor pixels are not peaks."""
    x = np.asarray(img, dtype=np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return []
    floor = x[finite].min()
    is_peak = finite & (x == maximum_filter3(x)) & (x > floor)
    rows, cols = np.nonzero(is_peak)
    vals = x[rows, cols]
    order = np.lexsort((rows * x.shape[1] + cols, -vals))[:n]
    return [(int(rows[i]), int(cols[i]), float(vals[i])) for i in order]


def match_peaks(ref, other, gate: float = PEAK_GATE) -> dict:
    """Greedy match (brightest reference peak first) to the nearest unused peak within gate."""
    used: set[int] = set()
    dists = []
    for r, c, _ in ref:
        best, best_d = None, None
        for k, (r2, c2, _) in enumerate(other):
            if k in used:
                continue
            d = math.hypot(r - r2, c - c2)
            if d <= gate and (best_d is None or d < best_d):
                best, best_d = k, d
        if best is not None:
            used.add(best)
            dists.append(best_d)
    n_ref = len(ref)
    return {
        "n_c": n_ref,
        "n_py": len(other),
        "matched": len(dists),
        "match_fraction": (len(dists) / n_ref) if n_ref else (1.0 if not other else 0.0),
        "median_distance": float(np.median(dists)) if dists else (0.0 if not n_ref else math.nan),
        "gate": gate,
    }


def compute(c: np.ndarray, py: np.ndarray, roi=None, n_peaks: int = N_PEAKS, gate: float = PEAK_GATE) -> dict:
    """All metrics for two same-shape 2-D images (rows = slow, cols = fast)."""
    if c.shape != py.shape:
        raise ValueError(f"shape mismatch {c.shape} vs {py.shape}")
    rs, cs = roi_slice(c.shape, roi)
    c = np.asarray(c[rs, cs], dtype=np.float64)
    py = np.asarray(py[rs, cs], dtype=np.float64)
    fc, fp = np.isfinite(c), np.isfinite(py)
    both = fc & fp
    a, b = c[both], py[both]
    sum_c, sum_py = float(a.sum()), float(b.sum())
    if a.size == 0:
        ratio = math.nan
    elif sum_c != 0.0:
        ratio = sum_py / sum_c
    else:
        ratio = 1.0 if sum_py == 0.0 else math.inf
    diff = b - a
    max_abs = float(np.abs(diff).max()) if diff.size else math.nan
    max_c = float(np.abs(a).max()) if a.size else math.nan
    if diff.size == 0:
        max_rel = math.nan
    elif max_c > 0:
        max_rel = max_abs / max_c
    else:
        max_rel = 0.0 if max_abs == 0.0 else math.inf
    peaks = match_peaks(local_maxima(c, n_peaks), local_maxima(py, n_peaks), gate)
    return {
        "n_pixels": int(c.size),
        "n_compared": int(a.size),
        "roi": list(roi) if roi is not None else None,
        "corr": pearson(a, b),
        "sum_c": sum_c,
        "sum_py": sum_py,
        "sum_ratio": ratio,
        "rmse": float(np.sqrt(np.mean(diff * diff))) if diff.size else math.nan,
        "max_abs_diff": max_abs,
        "max_rel_diff": max_rel,
        "max_c": float(a.max()) if a.size else math.nan,
        "max_py": float(b.max()) if b.size else math.nan,
        "nonfinite_c": int((~fc).sum()),
        "nonfinite_py": int((~fp).sum()),
        "nonfinite_mismatch": int((fc != fp).sum()),
        "peaks": peaks,
    }


def judge(m: dict, threshold: float = DEFAULT_THRESHOLD, sum_tol: float = DEFAULT_SUM_TOL):
    """(passed, checks): checks is a list of (name, value, requirement, ok)."""
    corr, ratio = m["corr"], m["sum_ratio"]
    dev = abs(ratio - 1.0) if math.isfinite(ratio) else math.inf
    checks = [
        ("corr", corr, f">= {threshold:g}", bool(math.isfinite(corr) and corr >= threshold)),
        ("abs(sum_ratio-1)", dev, f"<= {sum_tol:g}", bool(dev <= sum_tol)),
        ("nonfinite_mismatch", m["nonfinite_mismatch"], "== 0", m["nonfinite_mismatch"] == 0),
        ("n_compared", m["n_compared"], "> 0", m["n_compared"] > 0),
    ]
    return all(ok for *_, ok in checks), checks


def jsonable(obj):
    """Replace non-finite floats with strings so the result is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj
