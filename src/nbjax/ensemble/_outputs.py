"""What an ensemble refinement writes: the merged structure factors (MTZ, through gemmi), one
refined DIALS list per shot, a JSON summary and a report (PNG, through matplotlib when it is
installed)."""

from __future__ import annotations

import io
import json

import numpy as np


def merged_mtz_bytes(result, cell) -> bytes:
    """``merged.mtz``: H K L and, for every reflection some shot sees, F SIGF I SIGI and NSHOTS
    (the shots that see it); with anomalous reflections F(+) SIGF(+) F(-) SIGF(-) I(+) SIGI(+)
    I(-) SIGI(-) N(+) N(-) (a missing mate is NaN, MTZ's missing value)."""
    import gemmi

    refl = result.reflections
    seen = result.shots_seen > 0
    F, sF = np.where(seen, result.F, np.nan), np.where(seen, result.sigma_F, np.nan)
    I, sI = F * F, 2.0 * F * sF
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup(refl.space_group)
    mtz.set_cell_for_all(gemmi.UnitCell(*cell))
    mtz.add_dataset("nbjax")
    if refl.anomalous:
        n = refl.count // 2
        plus, minus = slice(0, n), slice(n, 2 * n)
        keep = seen[plus] | seen[minus]
        columns = [
            ("F(+)", "G", F[plus]), ("SIGF(+)", "L", sF[plus]), ("F(-)", "G", F[minus]), ("SIGF(-)", "L", sF[minus]),
            ("I(+)", "K", I[plus]), ("SIGI(+)", "M", sI[plus]), ("I(-)", "K", I[minus]), ("SIGI(-)", "M", sI[minus]),
            ("N(+)", "I", result.shots_seen[plus]), ("N(-)", "I", result.shots_seen[minus]),
        ]  # fmt: skip
        hkl = refl.hkl[plus][keep]
    else:
        keep = seen
        columns = [("F", "F", F), ("SIGF", "Q", sF), ("I", "J", I), ("SIGI", "Q", sI)]
        columns.append(("NSHOTS", "I", result.shots_seen))
        hkl = refl.hkl[keep]
    for label, kind, _ in columns:
        mtz.add_column(label, kind)
    data = np.column_stack([hkl.astype(np.float32)] + [np.asarray(v, np.float32)[keep] for _, _, v in columns])
    mtz.set_data(data)
    mtz.history = ["nbjax ensemble: structure factors refined jointly over the shots' shoebox pixels"]
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # gemmi writes to a path
        path = os.path.join(tmp, "merged.mtz")
        mtz.write_to_file(path)
        with open(path, "rb") as handle:
            return handle.read()


def summary_json(result, names, truth=None) -> bytes:
    """``ensemble.json``: the convergence, the loss per step, every shot's values and errors,
    the values all shots share (with errors), and the reflection count; ``truth`` (optional
    dict) is copied in."""
    t = result.table
    doc = {
        "converged": result.converged,
        "message": result.message,
        "steps": result.steps,
        "loss_history": list(result.loss_history),
        "reflections": int(result.reflections.count),
        "reflections_seen": int(np.count_nonzero(result.shots_seen > 0)),
        "reflections_seen_3": int(np.count_nonzero(result.shots_seen >= 3)),
        "shots": [
            {
                "shot": k,
                "name": names[k],
                "shoeboxes": int(t["shoeboxes"][k]),
                "pixels": int(t["pixels"][k]),
                "mixed_pixels": int(t["mixed"][k]),
                "panels": [
                    {"pixels": int(n), "residual_mean": float(mean), "residual_rms": float(rms)}
                    for n, mean, rms in t["residuals"][k]
                ],
                "parameters": [
                    {"name": n, "units": u, "start": float(a), "value": float(v), "stderr": float(e)}
                    for n, u, a, v, e in zip(
                        t["names"], t["units"], t["start"][k], t["value"][k], t["stderr"][k], strict=True
                    )
                ],
            }
            for k in range(len(names))
        ],
    }
    if result.shared:
        sh = result.shared
        doc["shared"] = [
            {"name": n, "units": u, "start": float(a), "value": float(v), "stderr": float(e)}
            for n, u, a, v, e in zip(sh["names"], sh["units"], sh["start"], sh["value"], sh["stderr"], strict=True)
        ]
    if truth is not None:
        doc["truth"] = truth
    return (json.dumps(doc, indent=1) + "\n").encode()


def report_png(result, F_truth=None) -> bytes | None:
    """The report: loss per step; refined F against the start (or the truth, when known); the
    distributions of the shots' values; the multiplicity; per panel the Pearson residuals
    (data - model) / sqrt(model) of the shots (mean and rms: 0 and 1 for a model that fits).
    None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
    except ImportError:
        return None
    seen = result.shots_seen > 0
    fig = Figure(figsize=(15, 8))
    axes = fig.subplots(2, 3)
    ax = axes[0, 0]
    history = np.asarray(result.loss_history)
    ax.plot(np.arange(len(history)), history - history.min() + 1.0, "o-")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss - final + 1")
    ax.set_title(f"{'converged' if result.converged else 'NOT converged'} in {result.steps} steps")
    ax = axes[0, 1]
    x = result.F_start if F_truth is None else F_truth
    ax.errorbar(x[seen], result.F[seen], yerr=result.sigma_F[seen], fmt=".", ms=2, lw=0.5)
    ax.set_xlabel("F truth" if F_truth is not None else "F start")
    ax.set_ylabel("F refined")
    ax.set_title(f"{int(np.count_nonzero(seen))} reflections seen")
    ax = axes[1, 0]
    t = result.table
    for k, name in enumerate(t["names"][:6]):
        ax.hist(t["value"][:, k] - t["start"][:, k], bins=20, histtype="step", label=name)
    if t["names"]:
        ax.legend(fontsize=7)
    ax.set_xlabel("refined - start (user units)")
    ax.set_title("per-shot values")
    ax = axes[0, 2]
    res = t["residuals"]  # (shots, panels, 3)
    for p in range(res.shape[1]):
        ax.plot(res[:, p, 1], res[:, p, 2], ".", label=f"panel {p}")
    ax.axhline(1.0, color="0.6", lw=0.5)
    ax.axvline(0.0, color="0.6", lw=0.5)
    ax.set_xlabel("mean of (d - m) / sqrt(m) per shot")
    ax.set_ylabel("rms")
    ax.set_title("residuals per panel")
    ax.legend(fontsize=7)
    axes[1, 2].axis("off")
    ax = axes[1, 1]
    counts = result.shots_seen[seen]
    ax.hist(counts, bins=np.arange(0.5, max(2, counts.max()) + 1.5))
    ax.set_xlabel("shots seeing a reflection")
    ax.set_title("multiplicity")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
