"""RunSettings: what the C program holds after parsing its command line.

Plain values only (no JAX), in the C program's internal units: metres, radians, Angstrom for
cell lengths, and the same sentinels it uses (NaN for "not given" beam centres and distances,
-1 for "auto" counts and ranges).  ``nbjax.setup`` applies the C program's post-parse
derivations to turn these into an ``Experiment``.
"""

from __future__ import annotations

import dataclasses
import math
import time

from nbjax.ctables import constants as C
from nbjax.ctables.conventions import CUSTOM as START
from nbjax.ctables.conventions import DEFAULT_CONVENTION

NAN = math.nan


def _start(vector: str):
    """Default factory: C's start-up value of a detector/beam vector (a fresh list)."""
    return lambda: [float(x) for x in getattr(START, vector)]


@dataclasses.dataclass
class RunSettings:
    # ---- input files
    matfile: str | None = None
    expt: str | None = None  # a DIALS experiment list (-expt): cli/expt.py
    expt_index: int = 0
    matrix: object = None  # an A matrix in memory (3x3, rows as a -mat file's): instead of -mat
    hklfile: str | None = None
    dumpfile: str = C.DEFAULT_DUMP
    maskfile: str | None = None
    sourcefile: str | None = None
    spectrumfile: str | None = None  # nbjax's -spectrum: wavelength/energy and weight per channel
    mtzfile: str | None = None  # nbjax's -mtz (gemmi), instead of -hkl
    mtz_column: str | None = None  # -mtz_column LABEL; None: the first F, else J column
    # ---- output files
    floatfile: str = C.DEFAULT_FLOATFILE
    intfile: str = C.DEFAULT_INTFILE
    pgmfile: str = C.DEFAULT_PGMFILE
    noisefile: str = C.DEFAULT_NOISEFILE
    write_pgm: bool = True
    calculate_noise: bool = True
    intfile_scale: float = 0.0
    pgm_scale: float = 0.0
    adc_offset: float = 40.0
    # ---- beam (m, rad, fraction)
    lambda0: float = 1.0e-10
    dispersion: float = 0.0
    dispstep: float = -1.0
    dispsteps: int = -1
    hdivrange: float = -1.0
    hdivstep: float = -1.0
    hdivsteps: int = -1
    vdivrange: float = -1.0
    vdivstep: float = -1.0
    vdivsteps: int = -1
    round_div: bool = True
    fluence: float = C.DEFAULT_FLUENCE
    flux: float = 0.0
    exposure: float = 1.0
    beamsize: float = 1.0e-4
    polarization: float = 0.0  # Kahn factor
    nopolar: bool = False
    # ---- crystal
    user_cell: bool = False
    cell: list = dataclasses.field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # A, rad
    misset_mode: str = "none"  # none | angles | random
    misset: tuple = (0.0, 0.0, 0.0)  # rad
    Na: float = 1.0
    Nb: float = 1.0
    Nc: float = 1.0
    sample_x: float = 0.0  # m
    sample_y: float = 0.0
    sample_z: float = 0.0
    xtal_shape: str = "square"  # square | round | gauss | tophat
    fudge: float = 1.0
    mosaic_spread: float = -1.0  # rad
    mosaic_domains: int = -1
    default_F: float = 0.0
    water_size: float = 0.0  # m
    # ---- seeds (stored negated, as C does)
    seed: int = dataclasses.field(default_factory=lambda: -int(time.time()))
    mosaic_seed: int = -12345678
    misset_seed: int | None = None  # None: the time seed captured before parsing
    # ---- detector (m, rad)
    pixel_size: float = 0.1e-3
    fpixels: int = 0
    spixels: int = 0
    distance: float = 100.0e-3
    close_distance: float = NAN
    detsize_f: float = 102.4e-3
    detsize_s: float = 102.4e-3
    detector_mu: float = -1.0  # 1/m
    detector_thick: float = 0.0
    detector_thickstep: float = -1.0
    detector_thicksteps: int = -1
    beam_vector: list = dataclasses.field(default_factory=_start("beam"))
    fdet_vector: list = dataclasses.field(default_factory=_start("fdet"))
    sdet_vector: list = dataclasses.field(default_factory=_start("sdet"))
    odet_vector: list = dataclasses.field(default_factory=_start("odet"))
    polar_vector: list = dataclasses.field(default_factory=_start("polar"))
    spindle_vector: list = dataclasses.field(default_factory=_start("spindle"))
    twotheta_axis: list = dataclasses.field(default_factory=_start("twotheta_axis"))
    detector_rotx: float = 0.0
    detector_roty: float = 0.0
    detector_rotz: float = 0.0
    detector_twotheta: float = 0.0
    pivot: str = START.pivot  # beam | sample
    convention: str = DEFAULT_CONVENTION  # mosflm | denzo | adxv | xds | dials | custom
    curved_detector: bool = False
    point_pixel: bool = False
    Xbeam: float = NAN
    Ybeam: float = NAN
    Xclose: float = NAN
    Yclose: float = NAN
    ORGX: float = NAN
    ORGY: float = NAN
    roi: list = dataclasses.field(default_factory=lambda: [-1, -1, -1, -1])
    # ---- sampling
    phi0: float = 0.0
    phistep: float = -1.0
    osc: float = -1.0
    phisteps: int = -1
    dmin: float = 0.0  # m
    oversample: int = -1
    oversample_thick: bool = False
    oversample_polar: bool = False
    oversample_omega: bool = False
    interpolate: int = 2  # 2 = auto
    # ---- console
    printout: bool = False
    printout_pixel: tuple = (-1, -1)  # (fast, slow)
    progress: bool = True
    # ---- from -img / -mask headers
    mask: object = None  # uint16 (spixels, fpixels) array when -mask is given
    # ---- nbjax only
    precision: str = "double"
    physical: bool = False
    tile_pixels: int = 0  # 0 = automatic
    devices: int = 0  # local devices for the tiles; 0 = all (the CLI process has one per CPU core)
    fast_noise: bool = False  # jax.random noise: same statistics, not C's exact stream
    force: bool = False  # run beyond the work limit (setup/workload.py)
    warnings: list = dataclasses.field(default_factory=list)
    argv: list = dataclasses.field(default_factory=list)  # as parsed, for the collision warnings
    given: dict = dataclasses.field(default_factory=dict)  # attribute -> "flag value" as typed, for messages

    def effective_misset_seed(self) -> int:
        """The misset RNG seed: -misset_seed when given, else the start-up time seed (C D23)."""
        return self.seed_at_start if self.misset_seed is None else self.misset_seed

    def __post_init__(self):
        self.seed_at_start = self.seed
