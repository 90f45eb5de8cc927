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
    -background_model plane|constant   per-shoebox background (default plane: c + tilt, but
                                 constant where the background is under 5 photons/pixel)
    -loss poisson|readout        readout: Gaussian with variance m + sigma_readout^2
    -sigma_readout S             read-out noise in photons (with -loss readout; default 1)

    -shots LIST                  instead of -expt/-data: one still per line 'EXPT IMAGE [INDEX]',
                                 each refined on its own (outputs in -outdir/shot_NNNNN)
    -coordinator HOST:PORT -num_processes N -process_id I   -shots over a jax.distributed job

Pixels outside a panel's trusted range (in counts) are masked.  Outputs in -outdir:
refined.expt (the list with the refined values), fit.json (values, errors, the shoebox
count), model.npy and residual.npy (panel stacks), fit_report.png (every panel with the
predicted spots before and after).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os

import numpy as np

from nbjax.cli.expt import user_flags
from nbjax.errors import NBError
from nbjax.io.atomic import check_writable

OUTPUTS = ("refined.expt", "fit.json", "model.npy", "residual.npy", "fit_report.png")
STILL_OPTIONS = {
    "-shoebox": 1,
    "-spot_threshold": 1,
    "-background_model": 1,
    "-sigma_readout": 1,
    "-adu": 1,
    "-pedestal": 1,
    "-shots": 1,
    "-coordinator": 1,
    "-num_processes": 1,
    "-process_id": 1,
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


@dataclasses.dataclass(frozen=True)
class StillOptions:
    """The shoebox fit's options, checked once (for one still or a list)."""

    free: list
    size: int
    threshold: float
    background: str
    loss: object
    method: object
    adu: float
    pedestal: float
    fitmask: str | None
    progress: bool


def still_options(opts, rest, loss_of, method_of) -> StillOptions:
    """The options of ``nbjax fit -expt``/``-shots`` (one-line errors naming the flag)."""
    import nbjax.fit as nf

    if "-free" not in opts:
        raise NBError("fit: give the free parameters with -free, e.g. -free misset,cell,N,scale,background_planes")
    background = opts.get("-background_model", "plane")
    if background not in ("plane", "constant"):
        raise NBError(f"-background_model: '{background}' is not plane or constant")
    if opts.get("-loss") == "readout":
        loss = nf.Readout(sigma_readout=_number(opts, "-sigma_readout", 1.0, float, 0.0))
    else:
        loss = loss_of(opts)
    return StillOptions(
        free=[n for n in opts["-free"].split(",") if n.strip()],
        size=_number(opts, "-shoebox", 11, int, 3),
        threshold=_number(opts, "-spot_threshold", 0.01, float, 0.0),
        background=background,
        loss=loss,
        method=method_of(opts),
        adu=_number(opts, "-adu", 1.0, float, 1e-300),
        pedestal=_number(opts, "-pedestal", 0.0),
        fitmask=opts.get("-fitmask"),
        progress="-noprogress" not in rest,
    )


def read_still(experiment, specs, o: StillOptions):
    """The still's panels as photons with their usable-pixel mask (``read_experiment_images``)."""
    from nbjax.io.images import read_experiment_images

    return read_experiment_images(experiment, specs, adu_per_photon=o.adu, pedestal=o.pedestal, mask=o.fitmask)


def main(opts, rest, argv, out, err, loss_of, method_of) -> int:
    """Refine one still; ``loss_of``/``method_of`` build ``-loss``/``-method`` as ``nbjax fit``."""
    from nbjax.cli import flags, jaxconfig
    from nbjax.io import expt as expt_io
    from nbjax.settings import RunSettings

    outdir = opts.get("-outdir", ".")
    for name in OUTPUTS:
        check_writable(os.path.join(outdir, name), "-outdir")
    if not opts["-data"]:
        raise NBError("fit: give the still with -data IMAGE (one stack, or one file per panel)")
    o = still_options(opts, rest, loss_of, method_of)
    settings = RunSettings(physical=True)
    flags.parse_argv(rest, settings)
    elist = expt_io.read_expt(settings.expt)
    experiment = elist.experiment(settings.expt_index)
    stack = read_still(experiment, opts["-data"] if len(opts["-data"]) > 1 else opts["-data"][0], o)
    jaxconfig.configure()
    user = user_flags(rest)
    result = fit_and_write(elist, settings.expt_index, stack, o, user, outdir, ["nbjax", "fit", *argv], out, err)
    return 0 if result.fit.converged else 3


def fit_and_write(elist, index, stack, o: StillOptions, user, outdir, command, out, err, shared_shapes=False):
    """Refine one still and write its outputs in ``outdir`` (all or none); returns the
    ``StillResult``."""
    import nbjax.fit as nf
    from nbjax.io.atomic import StagedWrites

    panels = elist.experiment(index).panels

    def progress(step, value, damping):
        if o.progress:
            extra = "" if damping is None else f" (damping {damping:.2g})"
            print(f"nbjax: fit step {step}: loss {value:.10g}{extra}", file=err, flush=True)

    result = nf.refine_still(
        elist,
        index,
        stack.data,
        stack.mask,
        o.free,
        user,
        size=o.size,
        threshold=o.threshold,
        tilt=o.background == "plane",
        loss=o.loss,
        method=o.method,
        progress=progress,
        shared_shapes=shared_shapes,
    )
    fit = result.fit
    print(f"{result.shoeboxes.count} shoeboxes of {o.size}x{o.size} pixels on {len(panels)} panel(s)", file=out)
    print(_table(fit), file=out)
    doc = fit.as_dict()
    doc["shoeboxes"] = {
        "count": result.shoeboxes.count,
        "size": o.size,
        "spot_threshold": o.threshold,
        "background": o.background,
        "spots": result.shoeboxes.spots.tolist(),
    }
    doc["command"] = list(command)
    doc["data"] = list(stack.sources)
    model = [_or_zeros(m, p.shape) for m, p in zip(fit.model_images, panels, strict=True)]
    residual = [_or_zeros(r, p.shape) for r, p in zip(fit.residuals, panels, strict=True)]
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
    return result


def read_shots(path: str) -> list[tuple[str, str, int]]:
    """The shot list: one shot per line, ``EXPT IMAGE [INDEX]`` (paths relative to the list's
    folder; ``#`` comments and blank lines skipped)."""
    from nbjax.cli.lists import beside, list_lines

    shots = []
    for number, line, words in list_lines(path):
        if len(words) not in (2, 3) or (len(words) == 3 and not words[2].isdigit()):
            raise NBError(f"{path} line {number}: expected 'EXPT IMAGE [INDEX]', got {line.strip()!r}")
        shots.append((beside(path, words[0]), beside(path, words[1]), int(words[2]) if len(words) == 3 else 0))
    if not shots:
        raise NBError(f"{path}: no shots (one 'EXPT IMAGE [INDEX]' per line)")
    return shots


def shots_main(opts, rest, argv, out, err, loss_of, method_of) -> int:
    """``nbjax fit -shots LIST ...``: one independent shoebox fit per shot, in one process (the
    shots share one compilation: ``refine_still(shared_shapes=True)``) or spread over the
    processes of a ``jax.distributed`` job (``-coordinator HOST:PORT -num_processes N
    -process_id I``: shot k is process k mod N's).  Shot k's outputs go to ``-outdir``/shot_k;
    each process writes ``shots_p<I>.json`` with one entry per shot (converged, loss, time)."""
    import time

    from nbjax.cli import jaxconfig
    from nbjax.io import expt as expt_io

    outdir = opts.get("-outdir", ".")
    rank, count = _processes(opts)
    check_writable(os.path.join(outdir, f"shots_p{rank}.json"), "-outdir")
    o = still_options(opts, rest, loss_of, method_of)
    shots = read_shots(opts["-shots"])
    mine = list(range(rank, len(shots), count))
    for k in mine:  # every input checked before any work
        expt_io.read_expt(shots[k][0]).experiment(shots[k][2])
        if not os.path.exists(shots[k][1].split(":")[0]):
            raise NBError(f"{opts['-shots']}: shot {k}: no image {shots[k][1]}")
    jaxconfig.configure()
    if count > 1:
        import nbjax.distributed as nd

        nd.initialize(opts["-coordinator"], count, rank)
    user = user_flags(rest)
    summary = []
    for k in mine:
        expt, image, index = shots[k]
        t0 = time.perf_counter()
        elist = expt_io.read_expt(expt)
        stack = read_still(elist.experiment(index), image, o)
        shot_dir = os.path.join(outdir, f"shot_{k:05d}")
        os.makedirs(shot_dir, exist_ok=True)
        print(f"shot {k}: {expt} [{index}] {image}", file=out)
        command = ["nbjax", "fit", *argv]
        result = fit_and_write(elist, index, stack, o, user, shot_dir, command, out, err, shared_shapes=True)
        seconds = time.perf_counter() - t0
        fit = result.fit
        summary.append(
            {
                "shot": k,
                "expt": expt,
                "image": image,
                "index": index,
                "converged": fit.converged,
                "loss": fit.loss_history[-1],
                "shoeboxes": result.shoeboxes.count,
                "seconds": seconds,
            }
        )
        print(f"shot {k}: {'converged' if fit.converged else 'NOT converged'} in {seconds:.1f} s", file=out)
    with open(os.path.join(outdir, f"shots_p{rank}.json"), "w") as handle:
        json.dump(summary, handle, indent=1)
    return 0 if all(s["converged"] for s in summary) else 3


def _processes(opts) -> tuple[int, int]:
    """(this process's id, the number of processes) of ``-coordinator/-num_processes/-process_id``."""
    given = [f for f in ("-coordinator", "-num_processes", "-process_id") if f in opts]
    if not given:
        return 0, 1
    if len(given) != 3:
        raise NBError("-coordinator, -num_processes and -process_id go together (a jax.distributed job)")
    count = _number(opts, "-num_processes", 1, int, 1)
    rank = _number(opts, "-process_id", 0, int, 0)
    if rank >= count:
        raise NBError(f"-process_id: {rank} is not below -num_processes {count}")
    return rank, count


def _or_zeros(image, shape):
    return np.zeros(shape) if image is None else np.asarray(image)


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
