"""A refinement against a known truth (simulations): how well the structure factors and the
shots' values are recovered, and whether their error bars are honest.

The overall scale of F is not determined by the data when every shot's scale is free (the
gauge, ``_refine``), and it is a group's own where shots link the reflections into separate
groups.  The comparison uses the largest group (``EnsembleResult.group``; the others are
counted): the truth is first brought to its refined scale, k = sum(F Ft / s^2) /
sum(Ft^2 / s^2) over the compared reflections (s = sigma_F), and a shot's true scale becomes
s_t / k^2.  Pulls: (refined - truth) / standard error, over the group's reflections seen in at
least ``min_shots`` shots, and its shots; a calibrated pull has mean 0 and standard deviation
1.
"""

from __future__ import annotations

import numpy as np

from nbjax.ensemble._reflections import numbers_of

MISSET = ("misset.x", "misset.y", "misset.z")


def truth_F(reflections, hkl, F) -> np.ndarray:
    """The truth table (hkl (m, 3), F (m,)) on the refinement's reflections (NaN: not listed)."""
    j = numbers_of(reflections, hkl)
    out = np.full(reflections.count, np.nan)
    out[j[j >= 0]] = np.asarray(F, np.float64)[j >= 0]
    return out


def compare(result, hkl, F, scales=None, missets_deg=None, min_shots: int = 3) -> dict:
    """Recovery statistics of ``result`` against the truth (module docstring): the number of
    compared reflections, the correlation of refined and true F, the pulls' mean and standard
    deviation, and per shot parameter (misset.x/y/z, scale) the pulls over this process's
    shots."""
    Ft = truth_F(result.reflections, hkl, F)
    groups = result.group[result.group >= 0]
    main = int(np.argmax(np.bincount(groups))) if groups.size else -1
    sel = (result.shots_seen >= min_shots) & np.isfinite(Ft) & np.isfinite(result.sigma_F) & (result.sigma_F > 0)
    out = {
        "groups": int(np.unique(groups).size),
        "outside_main_group": int(np.count_nonzero(sel & (result.group != main))),
        "min_shots": int(min_shots),
    }
    sel &= result.group == main
    out["reflections_compared"] = int(np.count_nonzero(sel))
    if not np.any(sel):
        return out
    f, t, s = result.F[sel], Ft[sel], result.sigma_F[sel]
    k = float(np.sum(f * t / s**2) / np.sum(t * t / s**2))
    pulls = (f - k * t) / s
    out.update(
        scale_k=k,
        F_correlation=float(np.corrcoef(f, t)[0, 1]),
        F_pull_mean=float(np.mean(pulls)),
        F_pull_std=float(np.std(pulls, ddof=1)) if pulls.size > 1 else float("nan"),
        F_within_3_sigma=float(np.mean(np.abs(pulls) < 3.0)),
    )
    shot_pulls: dict[str, list[float]] = {}
    for i, shot in zip(result.shot_indices, result.shots, strict=True):
        if shot.group != main:
            continue
        for axis, name in enumerate(MISSET):
            if missets_deg is not None and name in shot.names:
                shot_pulls.setdefault(name, []).append(
                    (shot.value(name) - float(missets_deg[i][axis])) / shot.error(name)
                )
        if scales is not None and "scale" in shot.names:
            shot_pulls.setdefault("scale", []).append((shot.value("scale") - scales[i] / k**2) / shot.error("scale"))
    for name, values in shot_pulls.items():
        v = np.asarray(values)
        out[f"{name}_pull_mean"] = float(np.mean(v))
        out[f"{name}_pull_std"] = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
        out[f"{name}_within_3_sigma"] = float(np.mean(np.abs(v) < 3.0))
    return out


def shared_truth(result, truth, missets_deg=None):
    """The truth of the refined shared values (a ``make_shots`` Truth's miscalibrations, by the
    values' labels: panel_shift.x@P0, panel_rotation.z@P1, spectrum_shift, ...) brought into the
    refinement's gauge (``Shared.in_gauge``; the shared values' transforms here are identities,
    so theta and user units agree); with ``missets_deg``, (that, the missets in the same gauge)."""
    tables = {"panel_shift": truth.panel_shift_mm, "panel_rotation": truth.panel_rotation_mrad}
    out = []
    for name in result.shared["names"]:
        stem, _, panel = name.partition("@")
        kind, _, axis = stem.partition(".")
        if kind == "spectrum_shift":
            out.append(truth.spectrum_shift_A)
        elif tables.get(kind) is not None and panel.startswith("P") and panel[1:].isdigit():
            out.append(float(tables[kind][int(panel[1:])]["xyz".index(axis)]))
        else:  # a group's value, or a kind the truth does not move
            out.append(1.0 if kind == "spectrum_scale" else 0.0)
    return result.sharing.in_gauge(np.asarray(out), missets_deg)
