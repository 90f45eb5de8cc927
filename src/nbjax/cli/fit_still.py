"""``nbjax fit -expt FILE.expt -data IMAGE -free LIST -outdir DIR``: shoebox refinement of a
still (``nbjax.fit.refine_still`` says what is fitted and how).

Options beside ``nbjax fit``'s (exact names):

    -expt FILE [-expt_index I]   the DIALS experiment (geometry, crystal, starting model)
    -data SPEC                   the still: one stack (.npy, HDF5 FILE.h5[:/dataset], CBF) or
                                 one file per panel (repeat -data); raw counts
    -adu A -pedestal P           photons = (counts - P) / A (default 1 and 0)
    -fitmask SPEC                usable pixels (non-zero), a stack like the data
    -shoebox N                   shoebox size in pixels (default 11)
    -spot_threshold F            spots: predicted maxima above F times the brightest (default 0.01)
    -background_model plane|constant   per-shoebox background (default plane: c + tilt)
    -loss poisson|readout        readout: Gaussian with variance m + sigma_readout^2
    -sigma_readout S             read-out noise in photons (with -loss readout; default 1)

Pixels outside a panel's trusted range (in counts) are masked.  Outputs in -outdir:
refined.expt (the list with the refined values), fit.json (values, errors, the shoebox
count), model.npy and residual.npy (panel stacks), fit_report.png (every panel with the
predicted spots before and after).
"""

from __future__ import annotations

import io
import json
import os

import numpy as np

from nbjax.errors import NBError

OUTPUTS = ("refined.expt", "fit.json", "model.npy", "residual.npy", "fit_report.png")
STILL_OPTIONS = {
    "-shoebox": 1,
    "-spot_threshold": 1,
    "-background_model": 1,
    "-sigma_readout": 1,
    "-adu": 1,
    "-pedestal": 1,
}


def _number(opts, flag, default, kind=float, low=None):
    if flag not in opts:
        return default
    try:
        value = kind(opts[flag])
    except ValueError:
        raise NBError(f"{flag}: '{opts[flag]}' is not a {'whole ' if kind is int else ''}number") from None
    if low is not None and not value >= low:
        raise NBError(f"{flag}: must be at least {low:g}, got {opts[flag]}")
    return value


def main(opts, rest, argv, out, err, loss_of, method_of) -> int:
    """Refine the still; ``loss_of``/``method_of`` build ``-loss``/``-method`` as ``nbjax fit``."""
    import nbjax.fit as nf
    from nbjax.cli import flags, jaxconfig
    from nbjax.io import expt as expt_io
    from nbjax.io.atomic import StagedWrites, check_writable
    from nbjax.io.images import read_images
    from nbjax.settings import RunSettings

    outdir = opts.get("-outdir", ".")
    for name in OUTPUTS:
        check_writable(os.path.join(outdir, name), "-outdir")
    if not opts["-data"]:
        raise NBError("fit: give the still with -data IMAGE (one stack, or one file per panel)")
    if "-free" not in opts:
        raise NBError("fit: give the free parameters with -free, e.g. -free misset,cell,N,scale,background_planes")
    settings = RunSettings(physical=True)
    flags.parse_argv(rest, settings)
    size = _number(opts, "-shoebox", 11, int, 3)
    threshold = _number(opts, "-spot_threshold", 0.01, float, 0.0)
    background = opts.get("-background_model", "plane")
    if background not in ("plane", "constant"):
        raise NBError(f"-background_model: '{background}' is not plane or constant")
    if opts.get("-loss") == "readout":
        loss = nf.Readout(sigma_readout=_number(opts, "-sigma_readout", 1.0, float, 0.0))
    else:
        loss = loss_of(opts)
    method = method_of(opts)
    elist = expt_io.read_expt(settings.expt)
    experiment = elist.experiment(settings.expt_index)
    panels = experiment.panels
    shape = (len(panels), *panels[0].shape) if len({p.shape for p in panels}) == 1 else None
    specs = opts["-data"] if len(opts["-data"]) > 1 else opts["-data"][0]
    stack = read_images(
        specs,
        panels=shape,
        adu_per_photon=_number(opts, "-adu", 1.0, float, 1e-300),
        pedestal=_number(opts, "-pedestal", 0.0),
        trusted_range=panels[0].trusted_range,
        mask=opts.get("-fitmask"),
    )
    jaxconfig.configure()
    user = [t for t in _without(rest, ("-expt", "-expt_index"))]
    progress_on = "-noprogress" not in rest

    def progress(step, value, damping):
        if progress_on:
            extra = "" if damping is None else f" (damping {damping:.2g})"
            print(f"nbjax: fit step {step}: loss {value:.10g}{extra}", file=err, flush=True)

    result = nf.refine_still(
        elist,
        settings.expt_index,
        stack.data,
        stack.mask,
        [n for n in opts["-free"].split(",") if n.strip()],
        user,
        size=size,
        threshold=threshold,
        tilt=background == "plane",
        loss=loss,
        method=method,
        progress=progress,
    )
    fit = result.fit
    print(f"{result.shoeboxes.count} shoeboxes of {size}x{size} pixels on {len(panels)} panel(s)", file=out)
    print(_table(fit), file=out)
    doc = fit.as_dict()
    doc["shoeboxes"] = {
        "count": result.shoeboxes.count,
        "size": size,
        "spot_threshold": threshold,
        "background": background,
        "spots": result.shoeboxes.spots.tolist(),
    }
    doc["command"] = ["nbjax", "fit", *argv]
    doc["data"] = list(stack.sources)
    model = [
        np.asarray(m) if m is not None else np.zeros(p.shape) for m, p in zip(fit.model_images, panels, strict=True)
    ]
    residual = [
        np.asarray(r) if r is not None else np.zeros(p.shape) for r, p in zip(fit.residuals, panels, strict=True)
    ]
    with StagedWrites() as files:
        files.stage(os.path.join(outdir, "refined.expt"), (json.dumps(result.refined_expt, indent=2) + "\n").encode())
        files.stage(os.path.join(outdir, "fit.json"), (json.dumps(doc, indent=1) + "\n").encode())
        files.stage(os.path.join(outdir, "model.npy"), _npy(model))
        files.stage(os.path.join(outdir, "residual.npy"), _npy(residual))
        png = report_png(result, stack.data)
        if png is not None:
            files.stage(os.path.join(outdir, "fit_report.png"), png)
        files.commit()
    for name in OUTPUTS:
        if name != "fit_report.png" or png is not None:
            print(f"writing {os.path.join(outdir, name)}", file=out)
    return 0 if fit.converged else 3


def _without(argv, own):
    out, skip = [], 0
    for token in argv:
        if skip:
            skip -= 1
        elif token in own:
            skip = 1
        else:
            out.append(token)
    return out


def _npy(images) -> bytes:
    buffer = io.BytesIO()
    try:
        np.save(buffer, np.stack([np.asarray(m, np.float32) for m in images]))
    except ValueError:  # panels of several shapes
        np.save(buffer, np.array([np.asarray(m, np.float32) for m in images], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _table(fit) -> str:
    """The fitted values without the per-shoebox planes (summarised in one line)."""
    rows = [k for k, n in enumerate(fit.names) if not n.startswith("plane[")]
    width = max([len(fit.names[k]) for k in rows] + [9])
    lines = [f"{'parameter':<{width}}  {'start':>14}  {'fitted':>14}  {'+-':>11}  units"]
    for k in rows:
        error = f"{'at bound':>11}" if fit.at_bound[k] else f"{fit.stderr[k]:11.4g}"
        lines.append(f"{fit.names[k]:<{width}}  {fit.start[k]:14.8g}  {fit.values[k]:14.8g}  {error}  {fit.units[k]}")
    planes = len(fit.names) - len(rows)
    if planes:
        lines.append(f"background planes: {planes} values (fit.json)")
    history = fit.loss_history
    state = "converged" if fit.converged else "NOT converged"
    lines.append(f"loss {history[0]:.10g} -> {history[-1]:.10g} in {len(history) - 1} steps; {state}: {fit.message}")
    return "\n".join(lines)


def report_png(result, data) -> bytes | None:
    """Every panel's data (log scale) with the spots predicted before (red circles) and after
    (green crosses) the refinement; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from nbjax.fit._still import find_spots

    n = len(data)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    size, threshold = result.shoeboxes.size, 0.01
    before = find_spots(result.before, size, threshold)
    after = find_spots(result.after, size, threshold)
    for p in range(rows * cols):
        ax = axes[p // cols][p % cols]
        ax.axis("off")
        if p >= n:
            continue
        ax.imshow(np.log10(np.maximum(np.asarray(data[p], float), 0.0) + 1.0), cmap="gray_r", origin="upper")
        b, a = before[before[:, 0] == p], after[after[:, 0] == p]
        ax.scatter(b[:, 2], b[:, 1], s=40, facecolors="none", edgecolors="red", linewidths=0.8, label="before")
        ax.scatter(a[:, 2], a[:, 1], s=25, marker="+", color="green", linewidths=0.8, label="after")
        ax.set_title(f"panel {p}", fontsize=8)
    axes[0][0].legend(loc="lower right", fontsize=6)
    fit = result.fit
    fig.suptitle(f"{result.shoeboxes.count} shoeboxes; loss {fit.loss_history[0]:.6g} -> {fit.loss_history[-1]:.6g}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()
