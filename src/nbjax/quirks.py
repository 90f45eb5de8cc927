"""Every C-program behaviour that a reader would not expect, in one place.

Each function reproduces what nanoBragg.c does, says so, and names the golden case in
``tests/data/c_golden`` that proves it.  Physical mode (``-physical``) bypasses them.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from nbjax.physics.rotations import rotate_axis


def c_pixel_sum(exp, x, s, reaches):
    """C's per-pixel accumulation I and the cached factors it is multiplied by (pixel =
    r_e^2 fluence I / steps * factor).

    C sums I = I_bg + sum F^2 over all samples, then multiplies by the solid angle and the
    polarization of the FIRST sample (first sub-pixel of layer 0, first source not skipped by
    dmin) and the capture fraction of the LAST layer's first sub-pixel (quirk D16; cases
    oversample-2, polar-kahn, absorption-thickness).  With -oversample_thick/_polar/_omega the
    C program multiplies the RUNNING SUM by that factor after every addition,
    I = (I + F^2) * m, so earlier samples are scaled again and again (case
    oversample-3-omega-polar, absorption-oversample-thick).
    """
    omega, capture, polar = s["omega"], s["capture"], s["polar"]  # (T,L,Q), (T,L,Q), (T,L,Q,S)
    T = x.shape[0]
    first_polar = first_unskipped_polar(polar, s["dmin_skip"])
    cached = {
        "thick": capture[:, -1, 0],
        "polar": first_polar,
        "omega": omega[:, 0, 0],
    }
    flags = {"thick": exp.oversample_thick, "polar": exp.oversample_polar, "omega": exp.oversample_omega}
    if not any(flags.values()):
        intensity = exp.background + jnp.sum(x.reshape(T, -1), axis=1)
    else:
        m = jnp.ones_like(x)
        if flags["thick"]:
            m = m * capture[:, :, :, None, None]
        if flags["polar"]:
            m = m * polar[..., None]
        if flags["omega"]:
            m = m * omega[:, :, :, None, None]
        m = jnp.where(reaches, m, 1.0).reshape(T, -1)
        xs = jnp.where(reaches, x, 0.0).reshape(T, -1)
        suffix = jnp.flip(jnp.cumprod(jnp.flip(m, axis=1), axis=1), axis=1)  # prod_{j >= n} m_j
        intensity = exp.background * suffix[:, 0] + jnp.sum(xs * suffix, axis=1)
    factor = 1.0
    for name, on in flags.items():
        if not on:
            factor = factor * cached[name]
    return intensity, factor


def first_unskipped_index(skip):
    """Per pixel, the flat (layer, sub-pixel, source) index of the first sample in C loop order
    not skipped by dmin: where C computes the polarization and runs its first phi loop."""
    return jnp.argmax(~skip.reshape(skip.shape[0], -1), axis=1)


def first_unskipped_polar(polar, skip):
    """Polarization of the first (layer, sub-pixel, source) in C loop order not skipped by dmin
    (``polar`` is per sample, or already that single value as (T, 1, 1, 1))."""
    if polar.shape[1:] == (1, 1, 1):
        return polar[:, 0, 0, 0]
    idx = first_unskipped_index(skip)
    return jnp.take_along_axis(polar.reshape(polar.shape[0], -1), idx[:, None], axis=1)[:, 0]


def c_solid_angle_sum(exp, omega):
    """C adds the cached solid angle once per sub-pixel and layer (D16): per pixel
    layers * oversample^2 * omega(first sub-pixel), or the sum of fresh values with
    -oversample_omega.  Printed as 'solid angle subtended by detector'."""
    T = omega.shape[0]
    if exp.oversample_omega and not exp.physical:
        return jnp.sum(omega.reshape(T, -1), axis=1)
    return omega[:, 0, 0] * (omega.shape[1] * omega.shape[2])


def curved_detector_positions(pos, det):
    """C's curved detector (D20): the pixel is placed at `distance` along the beam, rotated
    about sdet by pos_y/distance and then about fdet by pos_z/distance, using the planar
    position's lab Y and Z components (sensible only for a beam along x; case curved-detector)."""
    distance = jnp.dot(det.pix0, det.odet) / det.ratio
    start = jnp.broadcast_to(distance * det.beam, pos.shape)
    turned = rotate_axis(start, det.sdet, pos[..., 1:2] / distance, jnp)
    return rotate_axis(turned, det.fdet, pos[..., 2:3] / distance, jnp)


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


def c_quirk_warnings(s, geo, sources, phi_reused, oversample, layers, orientations) -> list[str]:
    """One line for each C behaviour that changes this run's result (C-compatible mode)."""
    argv = s.argv
    out = []

    def warn(text):
        out.append("quirk: " + text)

    if phi_reused:  # quirk-phi-zero-reuse, phi-zero-middle-step
        warn("phi is exactly 0 at a step; like nanoBragg, that step reuses the previous step's orientation (use -physical or -phi 1e-12)")
    if np.ptp(sources.weights) > 0:  # src-weights-seed vs src-weights-equal
        warn("source weights differ; like nanoBragg, nbjax ignores them (use -physical to honour them)")
    if s.sourcefile is not None and np.any(sources.wavelengths != s.lambda0):  # src-lambda-column
        warn("the source file's wavelength column (metres) is used per source; -lambda only sets the header, -mat scaling and oversampling")
    if s.oversample_polar and s.nopolar:  # nopolar-oversample-polar-thick
        warn("-nopolar with -oversample_polar; like nanoBragg, polarization is applied anyway")
    cached = [name for name, on in (("solid angle", s.oversample_omega), ("polarization", s.oversample_polar)) if not on]
    if oversample > 1 and cached:  # oversample-2
        warn(f"{' and '.join(cached)} come from the first sub-pixel, as in nanoBragg (use -oversample_omega/-oversample_polar or -physical)")
    if any((s.oversample_thick, s.oversample_polar, s.oversample_omega)) and oversample * oversample * sources.wavelengths.size * orientations * layers > 1:
        warn("-oversample_thick/_polar/_omega multiply the running sum after every sample, as in nanoBragg (oversample-3-omega-polar)")
    if layers > 1:  # absorption-thickness
        warn("sensor layers are spaced thick/(layers-1) and the sum is scaled by the last layer's capture fraction, as in nanoBragg")
    if s.water_size > 0 and oversample * oversample * sources.wavelengths.size * orientations > 1:  # water-oversample-omega-roi
        warn("the water background is divided by the number of samples, as in nanoBragg")
    if any("-misset_seed" in t for t in argv):  # quirk-misset-seed-collision
        warn("-misset_seed also fires nanoBragg's -misset handler: the misset becomes (seed deg, next two tokens)")
    if any("-twotheta_axis" in t for t in argv):  # quirk-twotheta-axis-after
        warn(f"-twotheta_axis also fires -twotheta: two-theta is now {math.degrees(s.detector_twotheta):g} deg (its x component)")
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

