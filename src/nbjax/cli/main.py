"""``nbjax ARGS``: nanoBragg's command line, files and printed statistics, on JAX.

argv -> flags.parse_argv -> RunSettings -> setup.build -> Experiment -> kernel -> float image
-> files (float, SMV int, PGM, SMV noise) and the C program's closing statistics.
"""

from __future__ import annotations

import importlib
import math
import os
import sys

import numpy as np

from nbjax import environment
from nbjax.cli import jaxconfig
from nbjax.errors import NBError, UsageError
from nbjax.io.atomic import StagedWrites, check_writable
from nbjax.io.cformat import cformat_g as g

# nbjax WORD ARGS: the module whose main(argv, out, err) -> exit status serves WORD (nanoBragg's
# own arguments all begin with '-', so no word is taken from them)
SUBCOMMANDS = {
    "fit": "nbjax.cli.fit",
    "batch": "nbjax.cli.batch",
    "bench": "nbjax.bench",
    "ensemble": "nbjax.cli.ensemble",
}
# the subcommands whose fits run on one device: XLA's threads use every core there, and split
# host devices made them slower (measured: nbjax fit -demo 3.0 s on one, 4.6 s on two; ten
# megapixel stills in nbjax ensemble 2.5 against 3.3 s per step)
ONE_DEVICE = ("fit", "ensemble")
DEMO_ARGV = [
    "-cell",
    "100",
    "100",
    "100",
    "90",
    "90",
    "90",
    "-default_F",
    "100",
    "-N",
    "5",
    "-lambda",
    "1.0",
    "-distance",
    "100",
    "-detpixels",
    "256",
]


def run(argv: list[str], out=sys.stdout, err=sys.stderr) -> int:
    """Run one nanoBragg command line; returns the exit status."""
    from nbjax.cli import flags
    from nbjax.cli.headers import apply_headers
    from nbjax.settings import RunSettings

    if argv[:1] and argv[0] in SUBCOMMANDS:
        return importlib.import_module(SUBCOMMANDS[argv[0]]).main(argv[1:], out, err)
    if any(t in flags.HELP_FLAGS for t in argv):
        print(flags.usage_text(), file=out)
        return 0
    if "-expt" in argv:  # a DIALS experiment: every panel, physical mode
        from nbjax.cli import expt

        return expt.main(argv, out, err)
    if "-demo" in argv:
        argv = DEMO_ARGV + argv
    settings = RunSettings()
    header_lines: list[str] = []
    apply_headers(settings, argv, header_lines)
    flags.parse_argv(argv, settings)
    for flag, path in output_files(settings):
        check_writable(path, flag)
    jaxconfig.configure()
    from nbjax import setup

    derived = setup.build(settings)
    derived.write_fdump()
    exp = derived.experiment
    for line in header_lines + derived.lines:
        print(line, file=out)
    for w in derived.warnings:
        print(f"nbjax: warning: {w}", file=err)
    out.flush()
    image, omega, stop = _render(exp, settings, err)
    if settings.printout:
        from nbjax.cli.trace import trace_lines

        for line in trace_lines(exp, settings, image.astype(np.float32), derived.header.lambda0_m):
            print(line, file=out)
    _interpolation_warning(stop, out, err)
    with StagedWrites() as files:
        _finish(settings, exp, derived, image, omega, out, err, files)
        files.commit()
    return 0


def output_files(s) -> list[tuple[str, str]]:
    """(flag, path) of every file the run will write, checked before any work is done."""
    files = [("-floatfile", s.floatfile), ("-intfile", s.intfile)]
    if s.write_pgm:
        files.append(("-pgmfile", s.pgmfile))
    if s.calculate_noise:
        files.append(("-noisefile", s.noisefile))
    return files


PROGRESS_EVERY_S = 2.0  # at most one progress line per this many seconds (and the last one)
ANNOUNCE_WORK_S = 10.0  # runs estimated to take longer say what they will render first


def _render(exp, settings, err):
    import time

    import jax.numpy as jnp

    from nbjax.kernel import render_with_stats
    from nbjax.setup.workload import Workload, duration

    dtype = jnp.float32 if settings.precision == "single" else jnp.float64
    progress = None
    if settings.progress and not settings.printout:
        work = Workload.of(exp)
        if work.seconds >= ANNOUNCE_WORK_S:
            print(f"nbjax: rendering {work.describe()}", file=err, flush=True)
        t0 = last = time.perf_counter()

        def progress(done, total):
            nonlocal last
            now = time.perf_counter()
            if done < total and now - last < PROGRESS_EVERY_S:
                return
            last = now
            left = (now - t0) * (total - done) / done
            eta = f", about {duration(left)} left" if done < total else f" in {duration(now - t0)}"
            print(f"nbjax: {100 * done // total}% done{eta}", file=err, flush=True)

    result = render_with_stats(
        exp,
        dtype=dtype,
        tile=settings.tile_pixels or None,
        tiles_per_call=None if progress is None else 8,
        progress=progress,
        differentiable=False,
        devices=_device_count(settings),
    )
    return np.asarray(result.image), float(result.solid_angle_sum), result.interpolation_stop


def _device_count(settings):
    """-devices N (0: all local devices), checked against what JAX sees."""
    import jax

    available = len(jax.local_devices())
    if settings.devices > available:
        raise NBError(f"-devices: {settings.devices} requested, {available} available ({jax.default_backend()})")
    return None if settings.devices == 0 else settings.devices


def _interpolation_warning(stop, out, err):
    """C prints its out-of-range warning during the pixel loop; the second line has no
    newline, so it ends where C prints the blank line after the loop."""
    if stop is None:
        print("", file=out)
        return
    h, k, l = stop["hkl"]
    h0, k0, l0 = (math.ceil(x - 0.5) for x in (h, k, l))
    print(
        f"WARNING: out of range for three point interpolation: h,k,l,h0,k0,l0: {g(h)},{g(k)},{g(l)},{h0},{k0},{l0} ",
        file=out,
    )
    print("WARNING: further warnings will not be printed! ", file=out)
    f, s = stop["pixel"]
    print(
        f"nbjax: warning: quirk: pixel ({f}, {s}) needs structure factors outside the HKL table; like nanoBragg, "
        "interpolation is off from there on",
        file=err,
    )


def _finish(s, exp, derived, image, omega_total, out, err, files):
    """C's closing statistics and files; the files are staged in ``files`` (committed by the
    caller once all of them are written, so a run leaves all of them or none)."""
    from nbjax.cli.report import image_stats, solid_angle_line, stats_lines
    from nbjax.io import noise, pgm, smv
    from nbjax.io.floatimage import float_image_bytes

    geo = derived.geometry
    image32 = image if image.dtype == np.float32 else image.astype(np.float32)
    print(solid_angle_line(omega_total, exp.steps), file=out)
    stats = image_stats(image32, geo.roi, s.mask, geo.pixel_size, derived.oversample)
    print(f"writing {s.floatfile} as {image32.size} 4-byte floats", file=out)
    files.stage(s.floatfile, float_image_bytes(image32))
    for line in stats_lines(stats):
        print(line, file=out)
    scale = s.intfile_scale if s.intfile_scale > 0 else smv.auto_int_scale(stats.max_I)
    print(f"intfile_scale = {g(scale)}", file=out)
    header = derived.header
    overflow = smv.header_overflow(header)
    if overflow:
        print(
            f"nbjax: warning: quirk: the SMV header text is {512 + overflow} bytes but declares HEADER_BYTES=512; "
            "written as nanoBragg writes it, so readers will misplace the pixels",
            file=err,
        )
    files.stage(s.intfile, smv.smv_bytes(header, smv.int_image(image32, scale, s.adc_offset, geo.roi)))
    print(f"writing {s.intfile} as 2-byte integers", file=out)
    if s.write_pgm:
        pgm_scale = s.pgm_scale if s.pgm_scale > 0 else pgm.auto_pgm_scale(stats.rmsd, scale)
        print(f"pgm_scale = {g(pgm_scale)}", file=out)
        files.stage(s.pgmfile, pgm.pgm_bytes(image32, pgm_scale, geo.roi))
        print(f"writing {s.pgmfile} as 1-byte integers", file=out)
    if s.calculate_noise:
        if s.fast_noise:
            noisy, photons, overloads = noise.fast_poisson_noise_image(image32, -s.seed, s.adc_offset, geo.roi)
        else:
            noisy, photons, overloads = noise.poisson_noise_image(
                image32, -s.seed, s.adc_offset, geo.roi, rng=derived.random_state
            )
        print(f"{photons:.0f} photons on noise image ({overloads} overloads)", file=out)
        files.stage(s.noisefile, smv.smv_bytes(header, noisy, noise_image=True))
        print(f"writing {s.noisefile} as 2-byte integers", file=out)


class _PipeSafe:
    """A console stream for which a closed pipe (``nbjax -h | head -2``) is normal use: once the
    reader has gone, output is dropped quietly (the fd is pointed at /dev/null, so the final
    flush is quiet too) and the run goes on to write its files."""

    def __init__(self, stream):
        self.stream = stream
        self.gone = False

    def write(self, text):
        if not self.gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._reader_gone()
        return len(text)

    def flush(self):
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._reader_gone()

    def _reader_gone(self):
        self.gone = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one-line errors, no tracebacks (set NBJAX_DEBUG=1 to see them).

    As the process's entry point (``argv`` None) it ends with ``os._exit`` once its files are
    closed and its streams flushed: Python's and JAX's tear-down (``jax.clear_backends`` at
    exit) would add about 0.15 s to every run and have nothing left to do.  Before JAX starts
    it asks for one XLA host device per CPU core (``nbjax.cpu_devices``), over which the
    default ``-devices 0`` splits the tiles (not for the fits: ``ONE_DEVICE``)."""
    process = argv is None
    argv = sys.argv[1:] if argv is None else argv
    if process and (argv[:1] or [""])[0] not in ONE_DEVICE:
        from nbjax import cpu_devices

        cpu_devices.request()  # one host device per core, before JAX starts (-devices 0: all)
    out, err = _PipeSafe(sys.stdout), _PipeSafe(sys.stderr)
    try:
        code = run(argv, out=out, err=err)
    except UsageError as exc:
        from nbjax.cli.flags import usage_text

        print(usage_text(), file=out)
        print(f"nbjax: error: {exc}", file=err)
        code = exc.exit_code
    except NBError as exc:
        print(f"nbjax: error: {exc}", file=err)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("nbjax: interrupted", file=err)
        code = 130
    except Exception as exc:  # noqa: BLE001 (the CLI promises one line, never a traceback)
        if environment.get("NBJAX_DEBUG"):
            raise
        print(f"nbjax: internal error: {type(exc).__name__}: {exc} (set NBJAX_DEBUG=1 for details)", file=err)
        code = 1
    out.flush()
    err.flush()
    _exit(code, process)


def _exit(code, process: bool):
    """``sys.exit(code)``, or its status through ``os._exit`` for the whole process.  A process
    of a ``jax.distributed`` job that ends well first waits for the others to end
    (``nbjax.distributed.finish``); one that fails leaves at once and the job fails with it."""
    if process:
        if code in (0, 3) and "nbjax.distributed" in sys.modules:
            sys.modules["nbjax.distributed"].finish()
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(0 if code is None else code if isinstance(code, int) else 1)
    sys.exit(code)
