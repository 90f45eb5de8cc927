"""The C program's set-up-time behaviours a reader would not expect, and the one-line warning
for each behaviour that changes a run's result (render-time ones: ``ccompat.accumulation``).

Each function reproduces what nanoBragg.c does, says so, and names the golden case in
``tests/data`` that proves it.  Physical mode (``-physical``) bypasses them.
"""

from __future__ import annotations

import math

import numpy as np


def phi_angles_c(phis) -> tuple[np.ndarray, np.ndarray]:
    """Phi angles C actually renders (D19; cases quirk-phi-zero-reuse, mosaic-seed-phi).

    When phi is exactly 0 C skips the rotation and reuses the orientation of the previous phi
    step it rendered: for slot 0 that is the last non-zero step of the previous source or
    sub-pixel.  Only the very first phi loop of the run (first pixel) starts from the true
    phi = 0 orientation.  ``phis``: phi0 + phistep k (rad).  Returns (steady-state angles,
    first-loop angles).
    """
    phis = [float(p) for p in phis]
    nonzero = [k for k, p in enumerate(phis) if p != 0.0]
    steady, first = [], []
    for k, p in enumerate(phis):
        earlier = [j for j in nonzero if j < k]
        if p != 0.0 or not nonzero:
            steady.append(p)
            first.append(p)
        else:
            steady.append(phis[earlier[-1]] if earlier else phis[nonzero[-1]])
            first.append(phis[earlier[-1]] if earlier else 0.0)
    return np.array(steady), np.array(first)


def cell_warning(requested, built) -> str | None:
    """The warning when C's set-up does not give back the cell asked for with -cell (both as
    (a, b, c in A, alpha, beta, gamma in degrees); ``built``: the cell of the direct vectors C
    renders, as it prints it).  For some cells (-cell 30 30 30 60 60 60 becomes 30 30 30
    57.849 57.849 58.5252) the direct vectors C regenerates from its reciprocal ones (scaled by
    the requested volume) are not that cell, and the spot shapes' a*, b*, c* are not their
    reciprocal vectors either; nbjax renders C's cell in both modes (physical mode with the
    reciprocal vectors of that cell).  Golden case triclinic-256: -cell 70 80 90 85 95 105, C
    prints and renders 'Unit Cell: 70 80 90 84.9923 95.0077 105.001'."""
    if np.allclose(built[:3], requested[:3], rtol=1e-6) and np.allclose(built[3:], requested[3:], rtol=0, atol=1e-5):
        return None
    return (
        "quirk: nanoBragg's set-up turns -cell "
        + " ".join(f"{x:g}" for x in requested)
        + " into "
        + " ".join(f"{x:g}" for x in built)
        + "; nbjax renders that cell, as nanoBragg does"
    )


def c_quirk_warnings(s, geo, sources, phi_reused, oversample, layers, orientations) -> list[str]:
    """One line for each C behaviour that changes this run's result (C-compatible mode)."""
    argv = s.argv
    out = []

    def warn(text):
        out.append("quirk: " + text)

    if phi_reused:  # quirk-phi-zero-reuse, phi-zero-middle-step
        warn(
            "phi is exactly 0 at a step; like nanoBragg, that step reuses the previous step's orientation (use "
            "-physical or -phi 1e-12)"
        )
    if np.ptp(sources.weights) > 0:  # src-weights-seed vs src-weights-equal
        warn("source weights differ; like nanoBragg, nbjax ignores them (use -physical to honour them)")
    if s.sourcefile is not None and np.any(sources.wavelengths != s.lambda0):  # src-lambda-column
        warn(
            "the source file's wavelength column (metres) is used per source; -lambda only sets the header, -mat "
            "scaling and oversampling"
        )
    if s.oversample_polar and s.nopolar:  # nopolar-oversample-polar-thick
        warn("-nopolar with -oversample_polar; like nanoBragg, polarization is applied anyway")
    cached = [
        name for name, on in (("solid angle", s.oversample_omega), ("polarization", s.oversample_polar)) if not on
    ]
    if oversample > 1 and cached:  # oversample-2
        warn(
            f"{' and '.join(cached)} come from the first sub-pixel, as in nanoBragg (use "
            "-oversample_omega/-oversample_polar or -physical)"
        )
    if (
        any((s.oversample_thick, s.oversample_polar, s.oversample_omega))
        and oversample * oversample * sources.wavelengths.size * orientations * layers > 1
    ):
        warn(
            "-oversample_thick/_polar/_omega multiply the running sum after every sample, as in nanoBragg "
            "(oversample-3-omega-polar)"
        )
    if layers > 1:  # absorption-thickness
        warn(
            "sensor layers are spaced thick/(layers-1) and the sum is scaled by the last layer's capture fraction, "
            "as in nanoBragg"
        )
    if (
        s.water_size > 0 and oversample * oversample * sources.wavelengths.size * orientations > 1
    ):  # water-oversample-omega-roi
        warn("the water background is divided by the number of samples, as in nanoBragg")
    if any("-misset_seed" in t for t in argv):  # quirk-misset-seed-collision
        warn("-misset_seed also fires nanoBragg's -misset handler: the misset becomes (seed deg, next two tokens)")
    if any("-twotheta_axis" in t for t in argv):  # quirk-twotheta-axis-after
        warn(
            f"-twotheta_axis also fires -twotheta: two-theta is now {math.degrees(s.detector_twotheta):g} deg (its x "
            "component)"
        )
    if any("-dump_pixel" in t for t in argv):
        warn("-dump_pixel is taken as -dump: the Fdump file is renamed, as in nanoBragg")
    if any("-pix0_vector" in t for t in argv):  # pix0-vector
        warn("-pix0_vector only selects the CUSTOM convention; nanoBragg ignores its value")
    if geo.convention != "custom":
        ignored = [f for f in ("-pivot", "-Xclose", "-Yclose") if any(f in t for t in argv)]
        if geo.convention in ("mosflm", "denzo", "adxv"):
            ignored += [f for f in ("-ORGX", "-ORGY") if any(f in t for t in argv)]
        if ignored:  # pivot-sample-override, xclose-yclose
            warn(f"ignored in the {geo.convention.upper()} convention, as in nanoBragg: {', '.join(ignored)}")
    if s.detector_twotheta != 0.0:  # quirk-distance-ratio-twotheta
        warn("the distance is corrected by the detector normal without two-theta (nanoBragg's distance ratio)")
    return out
