"""``nbjax -expt FILE.expt [-expt_index I] [nanoBragg flags] -floatfile OUT``: render a DIALS
experiment's panels.

The geometry (beam, panels, crystal orientation, domain size, mosaicity) comes from the file
(``nbjax.io.expt``, ``nbjax.panels``); nanoBragg flags give what the file lacks: structure
factors (-hkl, -default_F), -N and -mosaic (they win over the file's ML values), -fluence,
sources (-sourcefile, -lambda is the file's), -oversample (default 1), -water, -precision,
-devices.  The image is physical mode (C-compatible mode is one flat panel), written as a
(panels, slow, fast) float32 stack in photons: ``.npy``, or ``.h5`` with dataset ``data``
(h5py; panels of several shapes as datasets ``panel_000``, ... instead).  ``-noisefile OUT``
adds a Poisson draw of it (numpy, ``-seed``), the same way.  Flags for the C program's own
outputs (-intfile, -pgmfile, -noisefile as SMV) do not apply here.
"""

from __future__ import annotations

import sys

import numpy as np

from nbjax.errors import NBError

STACK_SUFFIXES = (".npy", ".h5", ".hdf5")
DEFAULT_FLOATFILE = "floatimage.npy"
OWN_FLAGS = ("-expt", "-expt_index")  # read here, not passed to the panels' set-up


def user_flags(argv: list[str]) -> list[str]:
    """``argv`` without -expt/-expt_index and their values: the flags for what the file lacks."""
    out, skip = [], 0
    for token in argv:
        if skip:
            skip -= 1
            continue
        if token in OWN_FLAGS:
            skip = 1
            continue
        out.append(token)
    return out


def _outputs(argv: list[str], settings) -> dict[str, str]:
    """{flag: path} of the stacks to write, checked before any work."""
    from nbjax.io.atomic import check_writable

    outputs = {"-floatfile": settings.floatfile if "-floatfile" in argv else DEFAULT_FLOATFILE}
    if "-noisefile" in argv:
        outputs["-noisefile"] = settings.noisefile
    for flag, path in outputs.items():
        if not path.lower().endswith(STACK_SUFFIXES):
            raise NBError(f"{flag} {path}: a panel stack is written as .npy or .h5")
        check_writable(path, flag)
    return outputs


def stack_bytes(images, path: str) -> bytes:
    """The panel images as the bytes of a .npy file or an HDF5 file (dataset ``data``, or one
    dataset per panel when their shapes differ)."""
    import io

    if path.lower().endswith(".npy"):
        if isinstance(images, list):
            raise NBError(f"{path}: the panels have several shapes; write .h5 (one dataset per panel)")
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(images, dtype=np.float32))
        return buffer.getvalue()
    try:
        import h5py
    except ImportError:
        raise NBError(f"{path}: writing HDF5 needs h5py (pip install 'nbjax[formats]')") from None
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h5:
        if isinstance(images, list):
            for k, image in enumerate(images):
                h5.create_dataset(f"panel_{k:03d}", data=np.asarray(image, dtype=np.float32))
        else:
            h5.create_dataset("data", data=np.asarray(images, dtype=np.float32))
        h5.attrs["units"] = "photons per pixel"
    return buffer.getvalue()


def main(argv: list[str], out=sys.stdout, err=sys.stderr) -> int:
    """Render the panels of ``-expt FILE``; returns the exit status."""
    import jax.numpy as jnp

    from nbjax.cli import flags, jaxconfig
    from nbjax.io import expt as expt_io
    from nbjax.io.atomic import StagedWrites
    from nbjax.settings import RunSettings

    settings = RunSettings(physical=True)
    flags.parse_argv(argv, settings)
    outputs = _outputs(argv, settings)
    jaxconfig.configure()
    from nbjax.panels import panel_experiments, render_panels

    elist = expt_io.read_expt(settings.expt)
    experiment = elist.experiment(settings.expt_index)
    user = user_flags(argv)
    built = panel_experiments(experiment, user)
    beam, crystal = experiment.beam, experiment.crystal
    cell = np.linalg.norm(crystal.real_space, axis=1)
    print(f"experiment {experiment.index} of {settings.expt}: {len(experiment.panels)} panel(s)", file=out)
    print(f"  wavelength {beam.wavelength:g} A, Kahn factor {beam.kahn:g}", file=out)
    print(f"  cell {cell[0]:g} {cell[1]:g} {cell[2]:g} A ({crystal.hall_symbol.strip()})", file=out)
    for note in built.notes:
        print(f"nbjax: note: {note}", file=err)
    for warning in built.warnings:
        print(f"nbjax: warning: {warning}", file=err)
    dtype = jnp.float32 if settings.precision == "single" else jnp.float64
    devices = None if settings.devices == 0 else settings.devices
    images = render_panels(built.experiments, dtype=dtype, devices=devices)
    per_panel = [np.asarray(image, dtype=np.float64) for image in images]
    for panel, image in zip(experiment.panels, per_panel, strict=True):
        print(
            f"  {panel.name}: {image.shape[1]}x{image.shape[0]} pixels, max {image.max():.6g}, "
            f"total {image.sum():.6g} photons",
            file=out,
        )
    with StagedWrites() as files:
        files.stage(outputs["-floatfile"], stack_bytes(_as_float32(images), outputs["-floatfile"]))
        print(f"writing {outputs['-floatfile']}", file=out)
        if "-noisefile" in outputs:
            rng = np.random.default_rng(abs(settings.seed))
            noisy = [rng.poisson(np.maximum(image, 0.0)).astype(np.float32) for image in per_panel]
            noise = noisy if isinstance(images, list) else np.stack(noisy)
            files.stage(outputs["-noisefile"], stack_bytes(noise, outputs["-noisefile"]))
            total = sum(float(n.sum()) for n in noisy)
            print(f"{total:.0f} photons on the noise stack (seed {abs(settings.seed)})", file=out)
            print(f"writing {outputs['-noisefile']}", file=out)
        files.commit()
    return 0


def _as_float32(images):
    if isinstance(images, list):
        return [np.asarray(image, dtype=np.float32) for image in images]
    return np.asarray(images, dtype=np.float32)
