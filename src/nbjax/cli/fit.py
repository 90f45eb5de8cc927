"""``nbjax fit``: fit source and nuisance parameters to observed images from the command line.

    nbjax fit [nanoBragg flags: the starting model] -data IMAGE [-data IMAGE ...] -free LIST ...
    nbjax fit -demo
    nbjax fit -expt FILE.expt -data STILL -free LIST -outdir DIR   (shoebox refinement of a
              still: its options are listed at the end)
    nbjax fit -shots LIST -free LIST -outdir DIR   (one shoebox refinement per line
              'EXPT IMAGE [INDEX]' of LIST, sharing one compilation; -coordinator HOST:PORT
              -num_processes N -process_id I spread the shots over a jax.distributed job)

The nanoBragg flags describe the starting model exactly as for a render, in physical mode
(implied).  Fit options (exact names):

    -data FILE        observed image (SMV counts - adc, raw float, .npy, CBF, HDF5/NeXus as
                      FILE.h5 or FILE.h5:/entry/data/data, or any fabio format); repeat
                      for a joint fit of several images of the same model
    -free LIST        comma-separated free parameters (names below), shared by all images
    -per_image LIST   parameters with one copy per image (e.g. scale,misset)
    -loss NAME        likelihood: {losses} (default poisson)
    -method NAME      optimiser: {methods} (default lm: Levenberg-Marquardt on the Fisher
                      matrix)
    -steps N          maximum optimiser steps
    -fitmask FILE     pixels to use (non-zero) in addition to -mask/-roi and overloads
    -maskvalue V      also drop pixels whose data equal V (photons)
    -outdir DIR       where the outputs go (default: the current folder)
    -demo             built-in problem: a 5-channel spectrum from one noisy still (-seed N)
    -h, --help        this text

Parameter names ({{ALIASES}} also accepted): {parameters}.

Outputs: fitted_sources.txt (nanoBragg source file), fit.json, model.bin, residual.bin (raw
float32, data - model), fit_report.png; the fitted values with standard errors on stdout and
one progress line per step on stderr unless -noprogress.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from nbjax.cli import jaxconfig
from nbjax.cli.fit_still import STILL_OPTIONS
from nbjax.errors import NBError

OUTPUT_NAMES = ("fitted_sources.txt", "fit.json", "fit_report.png")
IMAGE_NAMES = ("model.bin", "residual.bin")
_VALUED = {
    "-data": 1,
    "-free": 1,
    "-per_image": 1,
    "-loss": 1,
    "-method": 1,
    "-steps": 1,
    "-fitmask": 1,
    "-maskvalue": 1,
    "-outdir": 1,
    **STILL_OPTIONS,
}
_SWITCHES = {"-demo"}
HELP_FLAGS = ("-h", "--help", "-help")


def _split(argv):
    """(fit options, nanoBragg argv)."""
    opts = {"-data": []}
    rest = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _VALUED:
            if i + 1 >= len(argv):
                raise NBError(f"{token}: needs a value")
            if token == "-data":
                opts["-data"].append(argv[i + 1])
            else:
                opts[token] = argv[i + 1]
            i += 2
        elif token in _SWITCHES:
            opts[token] = True
            i += 1
        else:
            rest.append(token)
            i += 1
    return opts, rest


def help_text() -> str:
    """The usage (the module docstring, then the still fit's), with the names of ``nbjax.fit``'s
    registries."""
    import nbjax.fit as nf
    from nbjax.cli import fit_still

    text = __doc__.format(
        losses=", ".join(nf.LOSSES),
        methods=", ".join(nf.METHODS),
        parameters=", ".join(nf.PARAMETERS),
    ).replace("{ALIASES}", ", ".join(nf.ALIASES))
    return text + "\n" + fit_still.__doc__


def _parameters(flag: str, names: str, settings) -> list:
    """The fit parameters named in ``names`` (comma-separated), for the one-line errors of
    ``flag``."""
    import nbjax.fit as nf

    try:
        return [nf.parameter(n, settings) for n in names.split(",") if n.strip()]
    except NBError as exc:
        raise NBError(f"{flag}: {exc}") from None


def _method(opts):
    import nbjax.fit as nf

    name = opts.get("-method", "lm")
    if name not in nf.METHODS:
        raise NBError(f"-method: '{name}' is not one of {', '.join(nf.METHODS)}")
    cls = nf.METHODS[name]
    if "-steps" in opts:
        try:
            steps = int(opts["-steps"])
        except ValueError:
            raise NBError(f"-steps: '{opts['-steps']}' is not a whole number") from None
        if steps < 1:
            raise NBError("-steps: must be at least 1")
        return cls(max_steps=steps)
    return cls()


def _loss(opts):
    import nbjax.fit as nf

    name = opts.get("-loss", "poisson")
    if name not in nf.LOSSES:
        raise NBError(f"-loss: '{name}' is not one of {', '.join(nf.LOSSES)}")
    return nf.LOSSES[name]()


def _check_outdir(outdir):
    """Every output (one image's names) can be written, before any work (as a render does)."""
    from nbjax.io.atomic import check_writable

    for name in OUTPUT_NAMES + IMAGE_NAMES:
        check_writable(os.path.join(outdir, name), "-outdir")


def main(argv, out=sys.stdout, err=sys.stderr) -> int:
    """``nbjax fit ARGS``; returns the exit status (3: the fit did not converge)."""
    if any(t in HELP_FLAGS for t in argv):
        print(help_text(), file=out)
        return 0
    opts, rest = _split(argv)
    if "-shots" in opts:  # a list of DIALS stills: one shoebox refinement each
        from nbjax.cli import fit_still

        return fit_still.shots_main(opts, rest, argv, out, err, _loss, _method)
    if "-expt" in rest:  # a DIALS still: shoebox refinement
        from nbjax.cli import fit_still

        return fit_still.main(opts, rest, argv, out, err, _loss, _method)
    outdir = opts.get("-outdir", ".")
    _check_outdir(outdir)
    progress_on = "-noprogress" not in rest
    jaxconfig.configure()
    import nbjax.fit as nf

    truth = None
    if opts.get("-demo"):
        seed = 0
        if "-seed" in rest:
            k = rest.index("-seed")
            try:
                seed = abs(int(rest[k + 1]))
            except (IndexError, ValueError):
                raise NBError("-seed: needs a whole number") from None
        start, obs, free, truth = nf.demo_problem(seed)
        exps, observations, per_image = [start], [obs], []
        print(
            f"nbjax fit -demo: 5-channel spectrum, 128x128 pixels, Poisson noise (seed {seed}); fitting "
            f"{', '.join(p.name for p in free)}",
            file=out,
        )
    else:
        exps, observations, free, per_image = _model_and_data(opts, rest)
    loss, method = _loss(opts), _method(opts)

    def progress(step, value, damping):
        if progress_on:
            extra = "" if damping is None else f" (damping {damping:.2g})"
            print(f"nbjax: fit step {step}: loss {value:.10g}{extra}", file=err, flush=True)

    result = nf.fit(exps, observations, free, per_image=per_image, loss=loss, method=method, progress=progress)
    print(result, file=out)
    if truth is not None:
        print("\ntruth vs fitted:", file=out)
        for name, value in truth.items():
            line = f"  {name:<14} truth {value:12.8g}   fitted {result.value(name):12.8g}"
            if result.at_bound[result.names.index(name)]:
                print(f"{line} at bound", file=out)
                continue
            pull = (result.value(name) - value) / result.error(name)
            print(f"{line} +- {result.error(name):.3g}   ({pull:+.2f} sigma)", file=out)
    meta = {
        "command": ["nbjax", "fit", *argv],
        "data": opts.get("-data") or ["demo"],
        "loss": type(loss).__name__,
        "method": type(method).__name__,
        "free": [p.name for p in free],
        "per_image": [p.name for p in per_image],
    }
    if truth is not None:
        meta["truth"] = truth
    written = nf.write_outputs(
        result,
        outdir,
        meta,
        OUTPUT_NAMES,
        warn=lambda text: print(f"nbjax: warning: {text}", file=err),
        data_images=[np.asarray(o.image) for o in observations],
    )
    for path in written:
        print(f"writing {path}", file=out)
    return 0 if result.converged else 3


def _model_and_data(opts, rest):
    import nbjax.fit as nf
    from nbjax import setup
    from nbjax.cli import flags
    from nbjax.cli.headers import apply_headers
    from nbjax.settings import RunSettings

    if not opts["-data"]:
        raise NBError("fit: give the observed image(s) with -data FILE (or try -demo)")
    if "-free" not in opts:
        raise NBError("fit: give the free parameters with -free, e.g. -free weights,wavelengths,scale")
    settings = RunSettings(physical=True)
    apply_headers(settings, rest)
    flags.parse_argv(rest, settings)
    settings.physical = True
    exp = setup.build(settings).experiment
    shape = (exp.detector.spixels, exp.detector.fpixels)
    fitmask = opts.get("-fitmask")
    maskvalue = None
    if "-maskvalue" in opts:
        try:
            maskvalue = float(opts["-maskvalue"])
        except ValueError:
            raise NBError(f"-maskvalue: '{opts['-maskvalue']}' is not a number") from None
    observations = []
    for path in opts["-data"]:
        o = nf.observation(path, shape, adc=settings.adc_offset, mask_file=fitmask, mask_value=maskvalue, roi=exp.roi)
        if exp.mask is not None:
            o = nf.Observation(image=o.image, mask=o.mask & (np.asarray(exp.mask) != 0), sigma=o.sigma, name=o.name)
        observations.append(o)
    free = _parameters("-free", opts["-free"], settings)
    per_image = _parameters("-per_image", opts.get("-per_image", ""), settings)
    return [exp] * len(observations), observations, free, per_image
