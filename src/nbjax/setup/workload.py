"""The work and memory a render will take, estimated before any of it is done, and the limits
beyond which nbjax refuses to start (the C program just runs for hours, or crashes).

A render evaluates pixels x sub-pixels^2 x sensor layers x sources x phi steps x mosaic domains
samples.  The kernel holds one tile of pixels at a time (at least ``MIN_TILE_PIXELS`` of them),
so its memory is a tile's samples times ``BYTES_PER_SAMPLE``; the set-up holds every source and
mosaic domain on the host and builds them in Python loops.

Limits (documented in ``--help`` under -force):
* estimated time above ``MAX_SECONDS`` (one hour): refused unless ``-force`` is given;
* estimated memory above ``MEMORY_FRACTION`` of this machine's memory: always refused, since
  running out of memory would lose the whole run.

A refusal of a command line's work (``check_settings``) begins with the flags behind it, as the
user typed them (``-mosaic_dom 1e12: this run needs more memory ...``): the flags of each count
that alone, brought down to 1, would let the run through, or else of every count above 1.
"""

from __future__ import annotations

import dataclasses
import os

from nbjax.errors import NBError

MAX_SECONDS = 3600.0
MEMORY_FRACTION = 0.5
# Measured: about 1e7 samples/s for the CLI on a shared 2-core x86 CPU (float64); an
# accelerator is taken as 100 times faster.  Estimates only: the message says so.
CPU_SAMPLES_PER_SECOND = 1.0e7
ACCELERATOR_SAMPLES_PER_SECOND = 1.0e9
SETUP_SECONDS_PER_ITEM = 3.0e-5  # per source and per mosaic domain (Python loops, printed lines)
BYTES_PER_SAMPLE = 200  # peak bytes per sample of a kernel tile (indices, lattice factor, factors)
BYTES_PER_SETUP_ITEM = 400  # per source or mosaic domain on the host (vectors, printed line)
BYTES_PER_PIXEL = 64  # image, its float32 copy, counts and masks
MIN_TILE_PIXELS = 16  # kernel.default_tile never goes below this


@dataclasses.dataclass(frozen=True)
class Workload:
    pixels: int
    oversample: int
    layers: int
    sources: int
    phisteps: int
    domains: int
    accelerator: bool = False

    @property
    def per_pixel(self) -> int:
        return self.oversample**2 * self.layers * self.sources * self.phisteps * self.domains

    @property
    def samples(self) -> int:
        return self.pixels * self.per_pixel

    @property
    def seconds(self) -> float:
        rate = ACCELERATOR_SAMPLES_PER_SECOND if self.accelerator else CPU_SAMPLES_PER_SECOND
        return self.samples / rate + (self.sources + self.domains) * SETUP_SECONDS_PER_ITEM

    @property
    def memory_bytes(self) -> int:
        from nbjax.kernel import ACCELERATOR_TILE_EVALS, CPU_TILE_EVALS

        budget = ACCELERATOR_TILE_EVALS if self.accelerator else CPU_TILE_EVALS
        tile = max(budget, MIN_TILE_PIXELS * self.per_pixel)
        return (
            tile * BYTES_PER_SAMPLE
            + (self.sources + self.domains) * BYTES_PER_SETUP_ITEM
            + self.pixels * BYTES_PER_PIXEL
        )

    @classmethod
    def of(cls, exp) -> Workload:
        """The workload of a built Experiment."""
        import jax

        d = exp.detector
        return cls(
            roi_pixels(exp.roi, d.fpixels, d.spixels),
            d.oversample,
            d.layers,
            int(exp.beam.wavelengths.shape[0]),
            int(exp.crystal.phi.shape[0]),
            int(exp.crystal.mosaic_umats.shape[0]),
            accelerator=jax.default_backend() != "cpu",
        )

    def describe(self) -> str:
        return (
            f"{self.pixels} pixels x {self.oversample}^2 sub-pixels x {self.layers} layers x {self.sources} sources"
            f" x {self.phisteps} phi steps x {self.domains} mosaic domains = {self.samples:.3g} samples,"
            f" about {duration(self.seconds)} and {size(self.memory_bytes)} of memory"
        )


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.3g} days"


def size(nbytes: int | float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes / 1e3:.3g} kB"


def machine_memory() -> int | None:
    """Physical memory in bytes, or None where the system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def roi_pixels(roi, fpixels: int, spixels: int) -> int:
    """Pixels C renders for an inclusive ROI (xmin, xmax, ymin, ymax)."""
    xmin, xmax, ymin, ymax = roi
    nf = max(min(xmax, fpixels - 1) + 1 - max(xmin, 0), 0)
    ns = max(min(ymax, spixels - 1) + 1 - max(ymin, 0), 0)
    return nf * ns


def check(w: Workload, force: bool, memory: int | None = None) -> None:
    """Refuse (NBError) a workload beyond the limits; ``memory``: the machine's, in bytes."""
    memory = machine_memory() if memory is None else memory
    if memory and w.memory_bytes > MEMORY_FRACTION * memory:
        raise NBError(
            f"this run needs more memory than the machine has to spare ({size(MEMORY_FRACTION * memory)}): "
            f"{w.describe()}; reduce the sub-pixels, sources or mosaic domains (-force cannot help)"
        )
    if w.seconds > MAX_SECONDS and not force:
        raise NBError(
            f"this run would take too long: {w.describe()} (limit {duration(MAX_SECONDS)}); "
            "reduce -oversample, the sources or the mosaic domains, or give -force to run it anyway"
        )


def grid_sources(hdiv, vdiv, disp) -> int:
    """Sources of a divergence/dispersion grid (steps after ``sampling.grid_rule``); the round
    grid keeps about pi/4 of them, so this is an upper bound."""
    return max(int(hdiv[0]), 1) * max(int(vdiv[0]), 1) * max(int(disp[0]), 1)


def source_count(s, hdiv, vdiv, disp) -> int:
    """Sources the set-up will build: the lines of -sourcefile or the channels of -spectrum,
    else the grid's upper bound."""
    if s.spectrumfile is not None:
        from nbjax.io.spectrum import read_spectrum

        return read_spectrum(s.spectrumfile).wavelengths.size
    if s.sourcefile is not None:
        from nbjax.io.sourcefile import read_source_file

        return max(len(read_source_file(s.sourcefile)), 1)
    return grid_sources(hdiv, vdiv, disp)


# The counts of a Workload and the RunSettings attributes of the flags that set them.
COUNT_SETTINGS = {
    "oversample": ("oversample",),
    "layers": ("detector_thicksteps", "detector_thickstep"),
    "sources": (
        "sourcefile",
        "spectrumfile",
        "hdivsteps",
        "hdivstep",
        "vdivsteps",
        "vdivstep",
        "dispsteps",
        "dispstep",
    ),
    "phisteps": ("phisteps", "phistep"),
    "domains": ("mosaic_domains",),
}


def _passes(w: Workload, force: bool, memory: int | None) -> bool:
    try:
        check(w, force, memory)
    except NBError:
        return False
    return True


def flags_behind(w: Workload, s, memory: int | None = None) -> list[str]:
    """The flags and values, as typed (``s.given``), behind a workload that :func:`check`
    refuses: those of each count that alone, brought down to 1, would let it through; when no
    single count would, those of every count above 1."""
    large = [count for count in COUNT_SETTINGS if getattr(w, count) > 1]
    enough = [c for c in large if _passes(dataclasses.replace(w, **{c: 1}), s.force, memory)]
    named = []
    for count in enough or large:
        for attr in COUNT_SETTINGS[count]:
            if attr in s.given and s.given[attr] not in named:
                named.append(s.given[attr])
    return named


def check_settings(s, geo, oversample: int, layers: int, phisteps: int, domains: int, hdiv, vdiv, disp) -> Workload:
    """:func:`check` on the work the set-up is about to build (before any source or mosaic
    domain exists, so an absurd count cannot exhaust the memory first); the message begins with
    the flags behind a refusal (:func:`flags_behind`)."""
    import jax

    w = Workload(
        roi_pixels(geo.roi, geo.fpixels, geo.spixels),
        oversample,
        layers,
        source_count(s, hdiv, vdiv, disp),
        phisteps,
        domains,
        accelerator=jax.default_backend() != "cpu",
    )
    memory = machine_memory()
    try:
        check(w, s.force, memory)
    except NBError as exc:
        named = flags_behind(w, s, memory)
        if not named:
            raise
        raise NBError(f"{', '.join(named)}: {exc}", exc.exit_code) from None
    return w
