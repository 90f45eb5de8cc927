"""nanoBragg's command line: how each C option handler sets RunSettings.

The rows (patterns, match rules, values, order, help) are :mod:`nbjax.ctables.argv`, shared with
the bridge; this module adds one handler per row.  The C program tests every argv token that
starts with '-' against every handler in turn, so one token can fire several handlers:
``-twotheta_axis`` also fires ``-twotheta``, ``-misset_seed`` also fires ``-misset`` (reference
notes section 0).  Walking argv over the rows in the same order reproduces those collisions.

nbjax requires the value of every handler that reads one: C's ``-detector_abs``,
``-detector_thick`` and thickness-step handlers also fire when last and read ``argv[argc]``
(NULL); nbjax does not read past argv.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from nbjax.cli.cvalues import to_float, to_int
from nbjax.ctables import argv as ctable
from nbjax.ctables.constants import HC_EV_ANGSTROM, RTD
from nbjax.errors import NBError, quote_text
from nbjax.settings import RunSettings


@dataclasses.dataclass(frozen=True)
class Flag:
    """One C handler (a row of :mod:`nbjax.ctables.argv`) and what it sets."""

    row: ctable.Option
    apply: Callable[[RunSettings, list[str], str], None]

    def matches(self, token: str) -> bool:
        return self.row.matches(token)

    @property
    def nargs(self) -> int:  # values nbjax requires after the flag
        return self.row.values

    @property
    def needs_next(self) -> bool:  # takes no value but C still requires a following token
        return self.row.c_needs > self.row.values

    @property
    def reads(self) -> int:  # values read when present (-cell reads up to 6)
        return self.row.reads

    @property
    def stop(self) -> bool:  # the C handler ends with `continue`
        return self.row.stop

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(p.text for p in self.row.patterns)

    @property
    def help(self) -> str:
        return self.row.help


def _note_given(s, attrs, flag, token) -> None:
    """Record the flag and value as typed for each attribute they set (``RunSettings.given``),
    so that a later message can name them (a refused workload, say)."""
    for attr in attrs:
        s.given[attr] = f"{quote_text(flag)} {quote_text(token)}"


def _set(attr, convert=to_float, unit=None, also=None):
    """Handler setting ``attr`` from one value, converted by ``unit`` (C's own arithmetic)."""

    def apply(s, v, flag):
        value = convert(v[0], flag)
        setattr(s, attr, unit(value) if unit else value)
        _note_given(s, (attr,), flag, v[0])
        for k, val in (also or {}).items():
            setattr(s, k, val)

    return apply


def _set_many(attrs, unit=None, convert=to_float):
    def apply(s, v, flag):
        value = convert(v[0], flag)
        for attr in attrs:
            setattr(s, attr, unit(value) if unit else value)
        _note_given(s, attrs, flag, v[0])

    return apply


def _const(**fields):
    def apply(s, v, flag):
        for k, val in fields.items():
            setattr(s, k, val)

    return apply


def _vector(attr):
    def apply(s, v, flag):
        setattr(s, attr, [to_float(t, flag) for t in v[:3]])
        s.convention = "custom"

    return apply


def _cell(s, v, flag):
    """-cell a b c alpha beta gamma: reading stops at the first token starting with '-'."""
    s.user_cell = True
    for i, token in enumerate(v[:6]):
        if token.startswith("-"):
            break
        s.cell[i] = to_float(token, flag) / (RTD if i >= 3 else 1.0)
    if s.cell[0] > 0:
        from nbjax.setup.crystal import check_cell

        warning = check_cell(s.cell)
        if warning:
            s.warnings.append(warning)


def _misset_random(s, v, flag):
    if "rand" in v[0]:
        s.misset_mode = "random"
        return True  # C: continue
    return False


def _misset_angles(s, v, flag):
    s.misset_mode = "angles"
    s.misset = tuple(to_float(t, flag) / RTD for t in v[:3])


def _pivot(s, v, flag):
    if "sample" in v[0]:
        s.pivot = "sample"
    if "beam" in v[0]:
        s.pivot = "beam"


def _detector_abs(s, v, flag):
    if "inf" in v[0] or to_float(v[0], flag) == 0.0:
        s.detector_thick = 0.0
        s.detector_mu = 0.0
    else:
        s.detector_mu = 1.0 / (to_float(v[0], flag) * 1e-6)


def _roi(s, v, flag):
    s.roi = [to_int(t, flag) for t in v[:4]]


def _energy(s, v, flag):
    energy = to_float(v[0], flag)
    if not energy > 0:
        raise NBError(f"{flag}: the photon energy must be positive, got {v[0]} eV")
    s.lambda0 = (HC_EV_ANGSTROM / energy) / 1.0e10
    _note_given(s, ("lambda0",), flag, v[0])


def _printout_pixel(s, v, flag):
    s.printout_pixel = (to_int(v[0], flag), to_int(v[1], flag))


def _neg_seed(attr):
    def apply(s, v, flag):
        setattr(s, attr, -to_int(v[0], flag))

    return apply


def _file(attr, **also):
    def apply(s, v, flag):
        if not v[0]:
            raise NBError(f"{flag}: the file name is empty", exit_code=9)  # C's fopen("") fails: exit 9
        setattr(s, attr, v[0])
        _note_given(s, (attr,), flag, v[0])
        for k, val in also.items():
            setattr(s, k, val)

    return apply


def _mtz_column(s, v, flag):
    if not v[0]:
        raise NBError(f"{flag}: the column label is empty")
    s.mtz_column = v[0]
    _note_given(s, ("mtz_column",), flag, v[0])


def _precision(s, v, flag):
    if v[0] not in ("double", "single"):
        raise NBError(f"{flag}: expected 'double' or 'single', got '{v[0]}'")
    s.precision = v[0]


def _tile(s, v, flag):
    n = to_int(v[0], flag)
    if n <= 0:
        raise NBError(f"{flag}: tile size must be a positive number of pixels, got {v[0]}")
    s.tile_pixels = n


def _expt_index(s, v, flag):
    n = to_int(v[0], flag)
    if n < 0:
        raise NBError(f"{flag}: expected an experiment number (0 = the first), got {v[0]}")
    s.expt_index = n


def _devices(s, v, flag):
    n = to_int(v[0], flag)
    if n < 0:
        raise NBError(f"{flag}: expected a number of devices (0 = all), got {v[0]}")
    s.devices = n


# Unit conversions exactly as the C program writes them: x/1000.0 and x*1e-3 can differ in the
# last bit, which moves a pixel centre onto or off the direct beam.
def MM(x):  # mm -> m: atof()/1000.0
    return x / 1000.0


def DEG(x):  # deg -> rad: atof()/RTD
    return x / RTD


def ANGSTROM(x):  # A -> m: atof()/1.0e10
    return x / 1.0e10


def PERCENT(x):  # atof()/100.0
    return x / 100.0


def UM_THICK(x):  # -detector_thick: atof()*1e-6
    return x * 1e-6


def UM_WATER(x):  # -water: atof()/1e6
    return x / 1e6


def DMIN(x):  # -dmin: atof()*1e-10
    return x * 1e-10


# What each C handler sets, keyed by the row's name in nbjax.ctables.argv.C_OPTIONS.
C_HANDLERS: dict[str, Callable] = {
    "-Na": _set("Na", to_int),
    "-Nb": _set("Nb", to_int),
    "-Nc": _set("Nc", to_int),
    "-N": _set_many(("Na", "Nb", "Nc"), convert=to_int),
    "-cell": _cell,
    "-misset random": _misset_random,
    "-misset": _misset_angles,
    "-samplesize": _set_many(("sample_x", "sample_y", "sample_z"), MM),
    "-sample_thick": _set("sample_x", unit=MM),
    "-sample_width": _set("sample_y", unit=MM),
    "-sample_height": _set("sample_z", unit=MM),
    "-xtalsize": _set_many(("sample_x", "sample_y", "sample_z"), MM),
    "-xtal_thick": _set("sample_x", unit=MM),
    "-xtal_width": _set("sample_y", unit=MM),
    "-xtal_height": _set("sample_z", unit=MM),
    "-density": _const(),
    "-MW": _const(),
    "-Xbeam": _set("Xbeam", unit=MM, also={"pivot": "beam"}),
    "-Ybeam": _set("Ybeam", unit=MM, also={"pivot": "beam"}),
    "-Xclose": _set("Xclose", unit=MM, also={"pivot": "sample"}),
    "-Yclose": _set("Yclose", unit=MM, also={"pivot": "sample"}),
    "-ORGX": _set("ORGX", also={"pivot": "sample"}),
    "-ORGY": _set("ORGY", also={"pivot": "sample"}),
    "-pivot": _pivot,
    "-mosflm": _const(convention="mosflm", pivot="beam"),
    "-xds": _const(convention="xds", pivot="sample"),
    "-adxv": _const(convention="adxv", pivot="beam"),
    "-denzo": _const(convention="denzo", pivot="beam"),
    "-dials": _const(convention="dials", pivot="beam"),
    "-fdet_vector": _vector("fdet_vector"),
    "-sdet_vector": _vector("sdet_vector"),
    "-odet_vector": _vector("odet_vector"),
    "-beam_vector": _vector("beam_vector"),
    "-polar_vector": _vector("polar_vector"),
    "-spindle_axis": _vector("spindle_vector"),
    "-twotheta_axis": _vector("twotheta_axis"),
    "-pix0_vector": _const(convention="custom"),
    "-distance": _set("distance", unit=MM, also={"pivot": "beam"}),
    "-close_distance": _set("close_distance", unit=MM, also={"pivot": "sample"}),
    "-detector_abs": _detector_abs,
    "-detector_thick": _set("detector_thick", unit=UM_THICK),
    "-detector_thicksteps": _set("detector_thicksteps", to_int),
    "-thicksteps": _set("detector_thicksteps", to_int),
    "-twotheta": _set("detector_twotheta", unit=DEG, also={"pivot": "sample"}),
    "-detector_rotx": _set("detector_rotx", unit=DEG),
    "-detector_roty": _set("detector_roty", unit=DEG),
    "-detector_rotz": _set("detector_rotz", unit=DEG),
    "-detsize": _set_many(("detsize_f", "detsize_s"), MM),
    "-detsize_f": _set("detsize_f", unit=MM),
    "-detsize_s": _set("detsize_s", unit=MM),
    "-detpixels": _set_many(("fpixels", "spixels"), convert=to_int),
    "-detpixels_f": _set("fpixels", to_int),
    "-detpixels_s": _set("spixels", to_int),
    "-curved_det": _const(curved_detector=True),
    "-pixel": _set("pixel_size", unit=MM),
    "-point_pixel": _const(point_pixel=True),
    "-polar": _set("polarization", also={"nopolar": False}),
    "-nopolar": _const(nopolar=True),
    "-oversample_thick": _const(oversample_thick=True),
    "-oversample_polar": _const(oversample_polar=True),
    "-oversample_omega": _const(oversample_omega=True),
    "-oversample": _set("oversample", to_int),
    "-roi": _roi,
    "-lambda": _set("lambda0", unit=ANGSTROM),
    "-energy": _energy,
    "-fluence": _set("fluence"),
    "-flux": _set("flux"),
    "-exposure": _set("exposure"),
    "-beamsize": _set("beamsize", unit=MM),
    "-mosaic": _set("mosaic_spread", unit=DEG),
    "-mosaic_dom": _set("mosaic_domains", to_int),
    "-dispersion": _set("dispersion", unit=PERCENT),
    "-dispsteps": _set("dispsteps", to_int),
    "-divergence": _set_many(("hdivrange", "vdivrange"), MM),
    "-hdivrange": _set("hdivrange", unit=MM),
    "-vdivrange": _set("vdivrange", unit=MM),
    "-hdivstep": _set("hdivstep", unit=MM),
    "-hdivsteps": _set("hdivsteps", to_int),
    "-vdivstep": _set("vdivstep", unit=MM),
    "-vdivsteps": _set("vdivsteps", to_int),
    "-divsteps": _set_many(("hdivsteps", "vdivsteps"), convert=to_int),
    "-round_div": _const(round_div=True),
    "-square_div": _const(round_div=False),
    "-adc": _set("adc_offset"),
    "-phi": _set("phi0", unit=DEG),
    "-osc": _set("osc", unit=DEG),
    "-phistep": _set("phistep", unit=DEG),
    "-phisteps": _set("phisteps", to_int),
    "-dmin": _set("dmin", unit=DMIN),
    "-mat": _file("matfile"),
    "-hkl": _file("hklfile"),
    "-default_F": _set("default_F"),
    "-dump": _file("dumpfile"),
    "-img": _const(),  # the header is read in the pre-pass (cli/headers.py)
    "-stolout": _const(),
    "-stol": _const(),
    "-4stol": _const(),
    "-Q": _const(),
    "-sourcefile": _file("sourcefile"),
    "-floatfile": _file("floatfile"),
    "-intfile": _file("intfile"),
    "-pgmfile": _file("pgmfile", write_pgm=True),
    "-noisefile": _file("noisefile", calculate_noise=True),
    "-nonoise": _const(calculate_noise=False),
    "-nopgm": _const(write_pgm=False),
    "-scale": _set("intfile_scale"),
    "-pgmscale": _set("pgm_scale", also={"write_pgm": True}),
    "-coherent": _const(),
    "-printout": _const(printout=True),
    "-noprogress": _const(progress=False),
    "-progress": _const(progress=True),
    "-interpolate": _const(interpolate=1),
    "-nointerpolate": _const(interpolate=0),
    "-round_xtal": _const(xtal_shape="round"),
    "-square_xtal": _const(xtal_shape="square"),
    "-gauss_xtal": _const(xtal_shape="gauss"),
    "-tophat_spots": _const(xtal_shape="tophat"),
    "-fudge": _set("fudge"),
    "-printout_pixel": _printout_pixel,
    "-seed": _neg_seed("seed"),
    "-mosaic_seed": _neg_seed("mosaic_seed"),
    "-misset_seed": _neg_seed("misset_seed"),
    "-water": _set("water_size", unit=UM_WATER),
}

NBJAX_HANDLERS: dict[str, Callable] = {
    "-precision": _precision,
    "-physical": _const(physical=True),
    "-tile": _tile,
    "-devices": _devices,
    "-force": _const(force=True),
    "-demo": _const(),  # cli/main.py prepends the demo command line
    "-expt": _file("expt"),  # cli/expt.py renders the experiment's panels
    "-expt_index": _expt_index,
    "-fastnoise": _const(fast_noise=True),
    "-spectrum": _file("spectrumfile"),
    "-mtz": _file("mtzfile"),
    "-mtz_column": _mtz_column,
}


def _flags(rows, handlers) -> tuple[Flag, ...]:
    if set(handlers) != {row.name for row in rows}:
        raise RuntimeError(
            f"flag handlers out of step with the table: {sorted(set(handlers) ^ {row.name for row in rows})}"
        )
    return tuple(Flag(row, handlers[row.name]) for row in rows)


# C's pre-pass flags that its main loop does not test (-mask): cli/headers.py reads them before
# parsing; they have rows here so that parse_argv does not report them as unknown.
PREPASS_ONLY = tuple(row for row in ctable.PREPASS if row.name not in C_HANDLERS)

# The handlers, in the order of the C program's main parsing loop.
FLAGS: tuple[Flag, ...] = _flags(ctable.C_OPTIONS, C_HANDLERS)
# Tested before them: nbjax's own flags (exact names that no C pattern matches) and the pre-pass.
NBJAX_FLAGS: tuple[Flag, ...] = _flags(ctable.NBJAX_OPTIONS, NBJAX_HANDLERS) + _flags(
    PREPASS_ONLY, {row.name: _const() for row in PREPASS_ONLY}
)

HELP_FLAGS = ctable.HELP_FLAGS


def _is_number(token: str) -> bool:
    try:
        float(token)
        return True
    except ValueError:
        return False


# Tokens C's pre-pass reads (cli/headers.py) but its main loop has no handler for.
PREPASS_PATTERNS = ("-mask",)
# Handlers whose value C reads with atoi and where 0 means "not given" (the default stays).
ZERO_MEANS_UNSET = {"-detpixels": "the detector size then comes from -detsize/-pixel (default 1024x1024 pixels)"}


def _values_text(n: int) -> str:
    return f"{n} value{'s' if n != 1 else ''}"


def _missing_values(token: str, nargs: int, wanted: int, have: int) -> NBError:
    if nargs == 0:
        return NBError(
            f"{token} must not be the last argument: nanoBragg only reads it when another argument follows, "
            "and silently ignores it otherwise; move it before another flag"
        )
    return NBError(
        f"{token} needs {_values_text(wanted)}, got {have if have else 'none'}: nanoBragg would silently "
        "ignore the flag and use its default; give the value" + ("s" if wanted > 1 else "")
    )


def parse_argv(argv: list[str], settings: RunSettings | None = None) -> RunSettings:
    """Walk ``argv`` (without the program name) over the flag table, as the C main loop does.

    Unknown flags add a warning to ``settings.warnings`` and are otherwise ignored, as in C.
    A flag that C would skip for want of values (at the end of argv) is an NBError: C renders
    with its default then, which is never what the user asked for.
    """
    s = settings if settings is not None else RunSettings()
    s.argv = list(argv)
    argc = len(argv) + 1  # C's argc counts the program name
    for i0, token in enumerate(argv):
        if not token.startswith("-"):
            continue
        i = i0 + 1  # C index
        fired = False
        short = None  # (nargs, wanted, named by the token) of a matching handler short of values
        for flag in NBJAX_FLAGS + FLAGS:
            if not flag.matches(token):
                continue
            wanted = max(flag.nargs, 1 if flag.needs_next else 0)
            if not argc > i + wanted:
                if short is None or (token in flag.patterns and not short[2]):
                    short = (flag.nargs, wanted, token in flag.patterns)
                continue
            fired = True
            values = argv[i0 + 1 : i0 + 1 + max(flag.nargs, flag.reads)]
            stop = flag.apply(s, values, token)
            _note_zero_count(s, flag, token, values)
            if flag.stop or stop is True:
                break
        prepass = any(p in token for p in PREPASS_PATTERNS)
        if prepass and not fired and i0 + 1 < len(argv):
            continue  # read by the pre-pass (cli/headers.py)
        # A handler short of values is an error when nothing else fired for the token, or when
        # the token is that handler's own name (-misset 10 20: the 1-value -misset probe fired).
        if (not fired and (short or prepass)) or (short and short[2]):
            nargs, wanted, _ = short or (1, 1, True)
            raise _missing_values(token, nargs, wanted, len(argv) - i)
        if not fired and not _is_number(token):
            s.warnings.append(f"unknown flag {token} ignored (nanoBragg ignores it too)")
    return s


def _note_zero_count(s: RunSettings, flag: Flag, token: str, values: list[str]) -> None:
    for pattern, what in ZERO_MEANS_UNSET.items():
        if any(p.startswith(pattern) for p in flag.patterns) and values and to_int(values[0], token) == 0:
            s.warnings.append(f"{token} 0: nanoBragg takes a count of 0 as not given, and so does nbjax: {what}")


def usage_text() -> str:
    """The --help listing: every flag with its values, units and default."""
    lines = ["usage: nbjax [nanoBragg flags]   (same flags, defaults and outputs as nanoBragg)", ""]
    seen = set()
    for row in PREPASS_ONLY + ctable.C_OPTIONS + ctable.NBJAX_OPTIONS:
        name = " | ".join(p.text for p in row.patterns)
        if (name, row.help) in seen:
            continue
        seen.add((name, row.help))
        args = f" <{row.values} value{'s' if row.values > 1 else ''}>" if row.values else ""
        lines.append(f"  {name + args:<40s} {row.help}")
    lines.append("")
    lines.append("Matching follows nanoBragg: flags match by substring unless noted in the reference notes.")
    return "\n".join(lines)
