"""The list of x-ray sources: from a source file, a spectrum file, or a divergence x dispersion
grid.

Each source is a unit vector pointing from the sample towards the source (the incident beam
direction is its negative), a wavelength in metres and a weight.  The C program ignores the
weights (quirk D2) and uses the file's wavelength column, in metres (quirk D1).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from nbjax.ctables.constants import SOURCE_DISTANCE
from nbjax.errors import NBError
from nbjax.physics.rotations import rotate_axis, unitize


@dataclasses.dataclass
class SourceList:
    directions: np.ndarray  # (S, 3) unit vectors, sample -> source
    wavelengths: np.ndarray  # (S,) m
    weights: np.ndarray  # (S,)
    positions: np.ndarray  # (S, 3) as given / generated, before unitizing (printed by C)
    divsteps: int  # divergence points kept after the elliptical trim


def from_table(table: np.ndarray, beam: np.ndarray, lambda0: float, where: str) -> SourceList:
    """Sources from a (S, 5) table X Y Z weight lambda with NaN for missing columns (C defaults)."""
    t = np.array(table, dtype=float, copy=True)
    for j in range(3):
        t[np.isnan(t[:, j]), j] = -SOURCE_DISTANCE * beam[j]
    t[np.isnan(t[:, 3]), 3] = 1.0
    t[np.isnan(t[:, 4]), 4] = lambda0
    if not np.all(t[:, 4] > 0):
        line = int(np.argmin(t[:, 4] > 0)) + 1
        raise NBError(
            f"{where}: source {line} has wavelength {t[line - 1, 4]:g} m; it must be positive (nanoBragg would "
            "render a NaN image)"
        )
    directions, mags = unitize(t[:, :3])
    if np.any(mags == 0):
        line = int(np.argmax(mags == 0)) + 1
        raise NBError(f"{where}: source {line} is at the origin, so it has no direction")
    return SourceList(directions, t[:, 4].copy(), t[:, 3].copy(), t[:, :3].copy(), 0)


def from_spectrum(channels, beam: np.ndarray, where: str) -> SourceList:
    """Sources of a spectrum file (``nbjax.io.spectrum.SpectrumChannels``): one per channel, at
    the source file's default position (-10 m along the beam), with the channel's wavelength
    and weight; the same sources as a source file listing those positions, weights and
    wavelengths."""
    n = channels.wavelengths.size
    table = np.full((n, 5), np.nan)
    table[:, 3] = channels.weights
    table[:, 4] = channels.wavelengths
    return from_table(table, beam, math.nan, where)


def divergence_grid(hdiv, vdiv, disp, round_div: bool, beam, polar, vert, lambda0: float):
    """C's generated sources.  hdiv/vdiv/disp are (steps, range, step) after ``grid_rule``.

    Divergence points: offsets step*i - range/2, culled to an ellipse when ``round_div``
    (test*4 > 1.1 is dropped); each direction is -beam rotated by vdiv about the polarization
    axis, then by hdiv about the vertical; one source per wavelength
    lambda0 * (1 + disp_step*i - dispersion/2).  Returns (SourceList, printed deviation pairs,
    wavelengths).
    """
    (hn, hr, hs), (vn, vr, vs), (dn, dr, ds) = hdiv, vdiv, disp
    hr, hs, vr, vs = (np.float64(x) for x in (hr, hs, vr, vs))  # C divides 0/0 -> NaN, kept
    kept = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(hn):
            for j in range(vn):
                h = hs * i - hr / 2.0
                v = vs * j - vr / 2.0
                test = (h * h - hs * hs / 4.0 * (1 - hn % 2)) / hr / hr
                test += (v * v - vs * vs / 4.0 * (1 - vn % 2)) / vr / vr
                if round_div and test * 4.0 > 1.1:
                    continue
                kept.append((h, v))
    lambdas = [lambda0 * (1.0 + ds * k - dr / 2.0) for k in range(dn)]
    pos, lam = [], []
    for h, v in kept:
        vec = -SOURCE_DISTANCE * beam
        vec = rotate_axis(rotate_axis(vec, polar, v), vert, h)
        for wl in lambdas:
            pos.append(vec)
            lam.append(wl)
    pos = np.array(pos, dtype=float).reshape(-1, 3)
    n = len(lam)
    weights = np.full(n, 1.0 / n if n else 0.0)
    return SourceList(unitize(pos)[0], np.array(lam), weights, pos, len(kept)), kept, lambdas
