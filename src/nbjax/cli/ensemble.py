"""``nbjax ensemble``: structure factors refined jointly over many stills, with every shot's own
orientation, scale, background (and whatever else is freed).

    nbjax ensemble LIST -outdir DIR [options] [nanoBragg flags the lists lack: -N, -fluence, ...]
    nbjax ensemble -demo [-outdir DIR] [-shots N] [-seed S]

LIST: one shot per line, ``EXPT IMAGE [SPECTRUM] [MASK]`` (paths relative to the list's folder;
``-`` for none; ``#`` comments).  EXPT is a DIALS experiment list (experiment -expt_index, 0 by
default), IMAGE its panels (one stack: .npy, HDF5 FILE.h5[:/dataset], CBF), SPECTRUM a
``-spectrum`` file for that shot, MASK a usable-pixel stack (non-zero = usable).

Options (exact names):

    -free LIST            per-shot parameters (default misset,scale,background_planes; any of
                          nbjax fit's still names: cell, N, mosaic, spectrum_shift, ...)
    -restrain NAME=SIGMA[,NAME=SIGMA]   Gaussian priors on per-shot values, centred at each
                          shot's start (e.g. misset=0.05: deg; cell=0.2: A and deg alike)
    -shared LIST          parameters all shots share, refined with F: panel_shifts and
                          panel_rotations (one copy per panel group: detector metrology),
                          spectrum_shift and spectrum_scale (a spectrometer calibration)
    -panel_groups LIST    the group of each panel, e.g. 0,0,1,1 (default: every panel its own);
                          a group moves and turns as one body about its centre
    -default_F F          start every structure factor at F (default 100)
    -mtz FILE [-mtz_column LABEL]   start from an MTZ file's amplitudes (gemmi; others: -default_F)
    -dmin D               refine reflections to D A (default: the first shot's detector corner)
    -anomalous            F(+) and F(-) refined apart (default: Friedel mates tied)
    -shoebox N -spot_threshold F -background_model plane|constant   as nbjax fit -expt
    -steps N              at most N steps (default 30)
    -prior wilson         Wilson's distribution of the intensities per resolution shell as a
                          restraint (default: none)
    -method joint|alternating|lbfgs   a Levenberg-Marquardt step of everything (default);
                          alternating steps of the shots (F fixed) and of F (shots fixed); or
                          optax's L-BFGS preconditioned by the Fisher diagonal (-steps counts
                          its iterations; one process) - the last two for comparison
    -checkpoint_every K   save the state in DIR/checkpoint every K steps (default 1)
    -resume               continue from DIR/checkpoint (a killed job loses nothing)
    -coordinator HOST:PORT -num_processes N -process_id I   shots over a jax.distributed job
    -noprogress           no progress lines
    -demo                 render a small data set of stills with a known truth (-shots N, default
                          12; -seed S), refine it, and print truth against refined; with
                          -shared, the truth's panels and spectrum are off by DEMO_MISCALIBRATION

Outputs in DIR: merged.mtz (F SIGF I SIGI NSHOTS), shot_NNNNN.expt (each shot's refined list),
ensemble.json (convergence, losses, every shot's values and errors, the shared values),
ensemble_report.png;
checkpoint/ while it runs.  Exit status 3 when the refinement does not converge.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from nbjax.cli.fit_still import _number
from nbjax.errors import NBError, os_error_text
from nbjax.io.atomic import check_writable

VALUED = (
    "-outdir", "-free", "-default_F", "-mtz", "-mtz_column", "-dmin", "-shoebox", "-spot_threshold",
    "-background_model", "-steps", "-checkpoint_every", "-shots", "-seed", "-coordinator", "-num_processes",
    "-process_id", "-expt_index", "-method", "-prior", "-shared", "-panel_groups", "-restrain",
)  # fmt: skip
SWITCHES = ("-demo", "-resume", "-anomalous", "-noprogress")
OUTPUTS = ("merged.mtz", "ensemble.json", "ensemble_report.png")
DEFAULT_FREE = "misset,scale,background_planes"
# the demo truth's miscalibrations, for -demo -shared: per panel its shift (mm) and turn (mrad)
# from the .expt, and the spectrum's channels' shift (A) from spectrum.txt
DEMO_MISCALIBRATION = {
    "panel_shift_mm": ((0.05, -0.03, 0.10), (-0.04, 0.06, -0.08)),
    "panel_rotation_mrad": ((1.0, -0.5, 2.0), (-0.8, 0.6, -1.5)),
    "spectrum_shift_A": 2e-4,
}


def _split(argv):
    """(options, the list path or None, nanoBragg flags)."""
    opts, rest, listed = {}, [], None
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in VALUED:
            if i + 1 >= len(argv):
                raise NBError(f"{token}: needs a value")
            opts[token] = argv[i + 1]
            i += 2
            continue
        if token in SWITCHES:
            opts[token] = True
        elif listed is None and not token.startswith("-") and not rest:
            listed = token
        else:
            rest.append(token)
        i += 1
    return opts, listed, rest


def _restraints(text):
    """{name: sigma} of ``-restrain NAME=SIGMA[,NAME=SIGMA]`` (None: none)."""
    if not text:
        return None
    out = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise NBError(f"-restrain: '{item}' is not NAME=SIGMA") from None
    return out


def read_list(path: str) -> list[tuple[str, str, str | None, str | None]]:
    """The shots of a list file: (expt, image, spectrum or None, mask or None) per line."""
    from nbjax.cli.lists import beside, list_lines

    shots = []
    for number, line, words in list_lines(path):
        if not 2 <= len(words) <= 4:
            raise NBError(f"{path} line {number}: expected 'EXPT IMAGE [SPECTRUM] [MASK]', got {line.strip()!r}")
        words += ["-"] * (4 - len(words))
        paths = [None if w == "-" else beside(path, w) for w in words]
        for p, what in zip(paths, ("experiment list", "image", "spectrum", "mask"), strict=True):
            if p is not None and not os.path.exists(p.split(":")[0] if what == "image" else p):
                raise NBError(f"{path} line {number}: no {what} {p}")
        shots.append(tuple(paths))
    if not shots:
        raise NBError(f"{path}: no shots (one 'EXPT IMAGE [SPECTRUM] [MASK]' per line)")
    return shots


def _inputs(shots, index, opts):
    """``nbjax.ensemble.Input`` per shot: every list read and checked now, the images read when
    the shot is set up (``Input.load``; the first one now, to check it)."""
    from nbjax.ensemble import Input
    from nbjax.io import expt as expt_io

    inputs = []
    for k, (expt, image, spectrum, mask) in enumerate(shots):
        elist = expt_io.read_expt(expt)
        elist.experiment(index)
        args = ("-spectrum", spectrum) if spectrum else ()
        inputs.append(Input(f"shot_{k:05d}", elist, index, args=args, image=image, mask=mask))
    inputs[0].load()
    return inputs


def _reflections(inputs, opts):
    """The unique reflections: the first shot's space group and cell, -dmin or its corner."""
    from nbjax.ensemble import unique_reflections
    from nbjax.ensemble._reflections import cell_of, corner_dmin, space_group_of

    experiment = inputs[0].elist.experiment(inputs[0].index)
    if experiment.crystal is None:
        raise NBError(f"{inputs[0].name}: the experiment has no crystal")
    dmin = _number(opts, "-dmin", None, float, 1e-3) or corner_dmin(experiment)
    return unique_reflections(
        space_group_of(experiment.crystal), cell_of(experiment.crystal), dmin, anomalous=bool(opts.get("-anomalous"))
    )


def _start(reflections, opts, out):
    """The starting structure factors: -mtz (matched by index; the others -default_F) or
    -default_F (default 100)."""
    default = _number(opts, "-default_F", 100.0, float, 1e-300)
    F = np.full(reflections.count, default)
    if "-mtz" in opts:
        from nbjax.ensemble._reflections import numbers_of
        from nbjax.io.mtz import read_mtz_reflections

        refl = read_mtz_reflections(opts["-mtz"], opts.get("-mtz_column"))
        j = numbers_of(reflections, refl.hkl)
        F[j[j >= 0]] = np.maximum(refl.F[j >= 0], 1e-3 * default)
        print(f"starting F: {np.count_nonzero(j >= 0)} of {len(j)} P1 reflections of {opts['-mtz']}", file=out)
    return F


class _Progress:
    def __init__(self, err, on):
        self.err, self.on = err, on

    def setup(self, k, n, shot):
        if self.on:
            print(
                f"nbjax: ensemble set-up {k}/{n}: {shot.name}: {shot.shoeboxes} shoeboxes, "
                f"{len(shot.slots)} reflections",
                file=self.err,
                flush=True,
            )

    def __call__(self, state, per_step, eta):
        if self.on:
            print(
                f"nbjax: ensemble step {state.step}: loss {state.history[-1]:.10g} (damping {state.lam:.2g}; "
                f"{per_step:.1f} s/step, at most {eta:.0f} s to go)",
                file=self.err,
                flush=True,
            )


def main(argv, out=sys.stdout, err=sys.stderr) -> int:
    """``nbjax ensemble ...``; returns the exit status."""
    from nbjax.cli import jaxconfig
    from nbjax.cli.fit_still import _processes

    if any(t in ("-h", "--help", "-help") for t in argv):
        print(__doc__, file=out)
        return 0
    opts, listed, rest = _split(argv)
    outdir = opts.get("-outdir", ".")
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as exc:
        raise NBError(f"-outdir {outdir}: {os_error_text(exc, outdir)}") from None
    for name in OUTPUTS:
        check_writable(os.path.join(outdir, name), "-outdir")
    rank, count = _processes(opts)
    background = opts.get("-background_model", "plane")
    if background not in ("plane", "constant"):
        raise NBError(f"-background_model: '{background}' is not plane or constant")
    size = _number(opts, "-shoebox", 11, int, 3)
    threshold = _number(opts, "-spot_threshold", 0.01, float, 0.0)
    steps = _number(opts, "-steps", 30, int, 1)
    every = _number(opts, "-checkpoint_every", 1, int, 1)
    free = [n for n in opts.get("-free", DEFAULT_FREE).split(",") if n.strip()]
    shared = [n.strip() for n in opts.get("-shared", "").split(",") if n.strip()]
    groups = None
    if "-panel_groups" in opts:
        try:
            groups = [int(x) for x in opts["-panel_groups"].split(",")]
        except ValueError:
            raise NBError(f"-panel_groups: '{opts['-panel_groups']}' is not a list of group numbers") from None
    restrain = _restraints(opts.get("-restrain"))
    truth = None
    jaxconfig.configure()
    if opts.get("-demo"):
        inputs, user, truth = _demo(opts, outdir, out, shared)
    else:
        if listed is None:
            raise NBError("ensemble: give the shot list (nbjax ensemble LIST -outdir DIR), or -demo")
        index = _number(opts, "-expt_index", 0, int, 0)
        inputs = _inputs(read_list(listed), index, opts)
        user = rest
    if count > 1:
        import nbjax.distributed as nd

        nd.initialize(opts["-coordinator"], count, rank)
    from nbjax.ensemble import refine_ensemble

    reflections = _reflections(inputs, opts)
    F0 = _start(reflections, opts, out)
    print(
        f"nbjax ensemble: {len(inputs)} shots, {reflections.count} unique reflections of {reflections.space_group} "
        f"to {reflections.dmin:.3g} A; per shot: {', '.join(free)}"
        + (f"; shared: {', '.join(shared)}" if shared else ""),
        file=out,
    )
    result = refine_ensemble(
        inputs, reflections, F0, user, free, size=size, threshold=threshold, tilt=background == "plane",
        max_steps=steps, progress=_Progress(err, not opts.get("-noprogress")),
        checkpoint_dir=os.path.join(outdir, "checkpoint"), checkpoint_every=every, resume=bool(opts.get("-resume")),
        distributed=count > 1, method=opts.get("-method", "joint"), prior=opts.get("-prior"), shared=shared,
        panel_groups=groups, restrain=restrain,
    )  # fmt: skip
    _write(result, inputs, outdir, rank, out, truth)
    return 0 if result.converged else 3


def _write(result, inputs, outdir, rank, out, truth):
    """Every output, all or none (``StagedWrites``); process 0 writes the merged ones."""
    import json

    from nbjax.ensemble import _outputs
    from nbjax.io.atomic import StagedWrites

    seen = result.shots_seen > 0
    print(
        f"{'converged' if result.converged else 'NOT converged'} in {result.steps} steps ({result.message}); "
        f"{int(np.count_nonzero(seen))} reflections seen, {int(np.count_nonzero(result.shots_seen >= 3))} in >= 3 "
        "shots",
        file=out,
    )
    _print_shared(result, truth, out)
    names = [s.name for s in inputs]
    F_truth, stats = None, None
    if truth is not None:
        from nbjax.ensemble._truth import truth_F

        stats = _print_truth(result, truth, out)
        F_truth = truth_F(result.reflections, truth.table.hkl, truth.table.F)
    cell = _cell(inputs[0])
    with StagedWrites() as files:
        for k, shot in zip(result.shot_indices, result.shots, strict=True):
            text = json.dumps(shot.refined_expt, indent=2) + "\n"
            files.stage(os.path.join(outdir, f"{names[k]}.expt"), text.encode())
        if rank == 0:
            files.stage(os.path.join(outdir, "merged.mtz"), _outputs.merged_mtz_bytes(result, cell))
            files.stage(os.path.join(outdir, "ensemble.json"), _outputs.summary_json(result, names, stats))
            png = _outputs.report_png(result, F_truth)
            if png is not None:
                files.stage(os.path.join(outdir, "ensemble_report.png"), png)
        files.commit()
    if rank == 0:
        print(f"writing {os.path.join(outdir, 'merged.mtz')}, ensemble.json, ensemble_report.png and "
              f"{len(inputs)} refined .expt files", file=out)  # fmt: skip


def _cell(shot) -> tuple:
    from nbjax.ensemble._reflections import cell_of

    return cell_of(shot.elist.experiment(shot.index).crystal)


def _demo(opts, outdir, out, shared=()):
    """A small data set with a known truth (``nbjax.ensemble.make_shots``, rendered by nbjax)
    in DIR/demo_data: (inputs, the model's flags, the truth).  The truth's panels and spectrum
    are off by ``DEMO_MISCALIBRATION`` where ``shared`` refines them."""
    from nbjax.ensemble import make_shots

    n = _number(opts, "-shots", 12, int, 2)
    seed = _number(opts, "-seed", 0, int, 0)
    folder = os.path.join(outdir, "demo_data")
    off = {
        key: value
        for key, value in DEMO_MISCALIBRATION.items()
        if {"panel_shift_mm": "panel_shifts", "panel_rotation_mrad": "panel_rotations",
            "spectrum_shift_A": "spectrum_shift"}[key] in shared
    }  # fmt: skip
    print(f"nbjax ensemble -demo: rendering {n} stills (2 panels of 128x128, seed {seed}) in {folder}", file=out)
    truth = make_shots(folder, n, seed, panels=2, size=(128, 128), renderer="nbjax", **off)
    shots = read_list(truth.list_path)
    inputs = _inputs(shots, 0, opts)
    return inputs, list(truth.user_args), truth


def _print_shared(result, truth, out) -> None:
    """The shared values, refined +- error (with the demo: and the truth, in the refinement's
    gauge: ``Shared.in_gauge``)."""
    if not result.shared:
        return
    sh = result.shared
    from nbjax.ensemble._truth import shared_truth

    want = None if truth is None else shared_truth(result, truth)
    print("shared by all shots:", file=out)
    for k, (name, unit, start, value, err) in enumerate(
        zip(sh["names"], sh["units"], sh["start"], sh["value"], sh["stderr"], strict=True)
    ):
        line = f"  {name:24s} {value:+.5g} +- {err:.2g} {unit} (start {start:+.4g})"
        if want is not None:
            line += f"; truth {want[k]:+.5g}, pull {(value - want[k]) / err:+.2f}"
        print(line, file=out)


def _print_truth(result, truth, out) -> dict:
    """The demo's truth against the refined values (``nbjax.ensemble._truth.compare``)."""
    from nbjax.ensemble._truth import compare, shared_truth

    missets = truth.missets_deg if not result.shared else shared_truth(result, truth, truth.missets_deg)[1]
    stats = compare(result, truth.table.hkl, truth.table.F, truth.scales, missets)
    print("truth against refined (truth brought to the refined F scale, k = "
          f"{stats.get('scale_k', float('nan')):.4g}):", file=out)  # fmt: skip
    print(
        f"  F: {stats['reflections_compared']} reflections seen in >= 3 shots ({stats['groups']} group(s) of linked "
        f"reflections; {stats['outside_main_group']} outside the largest), correlation "
        f"{stats.get('F_correlation', float('nan')):.4f}, pulls mean {stats.get('F_pull_mean', float('nan')):+.2f} "
        f"std {stats.get('F_pull_std', float('nan')):.2f}",
        file=out,
    )
    for name in ("misset.x", "misset.y", "misset.z", "scale"):
        if f"{name}_pull_std" in stats:
            print(
                f"  {name}: pulls mean {stats[name + '_pull_mean']:+.2f} std {stats[name + '_pull_std']:.2f}, "
                f"{100 * stats[name + '_within_3_sigma']:.0f}% within 3 sigma",
                file=out,
            )
    return stats
