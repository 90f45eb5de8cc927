"""nanoBragg's command line as a table: one row per C handler, in the C program's order.

The C program tests every argv token that starts with '-' against every handler in turn,
using ``strstr`` (substring) matching, except a few exact or length-checked patterns; a
handler fires when its pattern matches and enough tokens follow.  Most handlers do not stop
the scan, so one token can fire several handlers: ``-twotheta_axis`` also fires
``-twotheta``, ``-misset_seed`` also fires ``-misset`` (reference notes section 0).  Walking
argv over this table in the same order reproduces those collisions; the table is also the
``--help`` text.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from nbjax.cli.cvalues import to_float, to_int
from nbjax.errors import NBError
from nbjax.io.cformat import RTD
from nbjax.settings import RunSettings


@dataclasses.dataclass(frozen=True)
class Flag:
    """One C handler: how it matches, how many values it reads, what it sets."""

    patterns: tuple[str, ...]
    nargs: int
    apply: Callable[[RunSettings, list[str], str], None]
    help: str
    exact: bool = False  # strcmp instead of strstr
    length: int | None = None  # strstr plus strlen(token) == length
    min_length: int | None = None  # strstr plus strlen(token) > min_length
    stop: bool = False  # the C handler ends with `continue`
    needs_next: bool = False  # takes no value but C still requires a following token
    reads: int = 0  # values read beyond nargs when present (-cell reads up to 6)

    def matches(self, token: str) -> bool:
        if self.exact:
            return token in self.patterns
        if self.length is not None and len(token) != self.length:
            return False
        if self.min_length is not None and len(token) <= self.min_length:
            return False
        return any(p in token for p in self.patterns)


def _set(attr, convert=to_float, unit=None, also=None):
    """Handler setting ``attr`` from one value, converted by ``unit`` (C's own arithmetic)."""

    def apply(s, v, flag):
        value = convert(v[0], flag)
        setattr(s, attr, unit(value) if unit else value)
        for k, val in (also or {}).items():
            setattr(s, k, val)

    return apply


def _set_many(attrs, unit=None, convert=to_float):
    def apply(s, v, flag):
        value = convert(v[0], flag)
        for attr in attrs:
            setattr(s, attr, unit(value) if unit else value)

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
    s.lambda0 = (12398.42 / energy) / 1.0e10


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
        for k, val in also.items():
            setattr(s, k, val)

    return apply


def _precision(s, v, flag):
    if v[0] not in ("double", "single"):
        raise NBError(f"{flag}: expected 'double' or 'single', got '{v[0]}'")
    s.precision = v[0]


def _tile(s, v, flag):
    n = to_int(v[0], flag)
    if n <= 0:
        raise NBError(f"{flag}: tile size must be a positive number of pixels, got {v[0]}")
    s.tile_pixels = n


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

# The handlers, in the order of the C program's main parsing loop.
FLAGS: tuple[Flag, ...] = (
    Flag(("-Na",), 1, _set("Na", to_int), "unit cells along a (default 1)", stop=True),
    Flag(("-Nb",), 1, _set("Nb", to_int), "unit cells along b (default 1)", stop=True),
    Flag(("-Nc",), 1, _set("Nc", to_int), "unit cells along c (default 1)", stop=True),
    Flag(("-N",), 1, _set_many(("Na", "Nb", "Nc"), convert=to_int), "unit cells in all directions", exact=True, stop=True),
    Flag(("-cell",), 1, _cell, "unit cell a b c (A) alpha beta gamma (deg); missing b,c = a, angles 90", reads=6),
    Flag(("-misset",), 1, _misset_random, "-misset random: random orientation (seed -misset_seed)"),
    Flag(("-misset",), 3, _misset_angles, "crystal rotations about x, y, z (deg), applied to the reciprocal cell"),
    Flag(("-samplesize", "-sample_size"), 1, _set_many(("sample_x", "sample_y", "sample_z"), MM), "crystal size, all axes (mm)"),
    Flag(("-sample_thick", "-sample_x"), 1, _set("sample_x", unit=MM), "crystal size along x (mm)"),
    Flag(("-sample_width", "-sample_y", "-width"), 1, _set("sample_y", unit=MM), "crystal size along y (mm)"),
    Flag(("-sample_heigh", "-sample_z", "-heigh"), 1, _set("sample_z", unit=MM), "crystal size along z (mm)"),
    Flag(("-xtalsize", "-xtal_size"), 1, _set_many(("sample_x", "sample_y", "sample_z"), MM), "crystal size, all axes (mm); N = ceil(size/cell)"),
    Flag(("-xtal_thick", "-xtal_x"), 1, _set("sample_x", unit=MM), "crystal size along x (mm)"),
    Flag(("-xtal_width", "-xtal_y", "-width"), 1, _set("sample_y", unit=MM), "crystal size along y (mm)"),
    Flag(("-xtal_heigh", "-xtal_z", "-heigh"), 1, _set("sample_z", unit=MM), "crystal size along z (mm)"),
    Flag(("-density", "-sample_den"), 1, _const(), "sample density (parsed, no effect, as in C)"),
    Flag(("-MW",), 1, _const(), "molecular weight (parsed, no effect, as in C)", exact=True),
    Flag(("-molec",), 1, _const(), "molecular weight (parsed, no effect, as in C)"),
    Flag(("-Xbeam",), 1, _set("Xbeam", unit=MM, also={"pivot": "beam"}), "direct-beam X in the convention's frame (mm)"),
    Flag(("-Ybeam",), 1, _set("Ybeam", unit=MM, also={"pivot": "beam"}), "direct-beam Y in the convention's frame (mm)"),
    Flag(("-Xclose",), 1, _set("Xclose", unit=MM, also={"pivot": "sample"}), "near-point X (mm; CUSTOM only)"),
    Flag(("-Yclose",), 1, _set("Yclose", unit=MM, also={"pivot": "sample"}), "near-point Y (mm; CUSTOM only)"),
    Flag(("-ORGX",), 1, _set("ORGX", also={"pivot": "sample"}), "XDS origin, fast (pixels)"),
    Flag(("-ORGY",), 1, _set("ORGY", also={"pivot": "sample"}), "XDS origin, slow (pixels)"),
    Flag(("-pivot",), 1, _pivot, "beam|sample: detector pivot (CUSTOM only; conventions re-assert theirs)"),
    Flag(("-mosflm",), 0, _const(convention="mosflm", pivot="beam"), "MOSFLM convention (default)"),
    Flag(("-xds",), 0, _const(convention="xds", pivot="sample"), "XDS convention"),
    Flag(("-adxv",), 0, _const(convention="adxv", pivot="beam"), "ADXV convention"),
    Flag(("-denzo",), 0, _const(convention="denzo", pivot="beam"), "DENZO convention"),
    Flag(("-dials",), 0, _const(convention="dials", pivot="beam"), "DIALS convention"),
    Flag(("-fdet_vector",), 3, _vector("fdet_vector"), "fast-axis unit vector (sets CUSTOM)"),
    Flag(("-sdet_vector",), 3, _vector("sdet_vector"), "slow-axis unit vector (sets CUSTOM)"),
    Flag(("-odet_vector",), 3, _vector("odet_vector"), "detector normal (sets CUSTOM)"),
    Flag(("-beam_vector",), 3, _vector("beam_vector"), "x-ray beam direction (sets CUSTOM)"),
    Flag(("-polar_vector",), 3, _vector("polar_vector"), "E-vector polarization direction (sets CUSTOM)"),
    Flag(("-spindle_axis",), 3, _vector("spindle_vector"), "phi rotation axis (sets CUSTOM)"),
    Flag(("-twotheta_axis",), 3, _vector("twotheta_axis"), "2theta axis (sets CUSTOM; also fires -twotheta)"),
    Flag(("-pix0_vector",), 3, _const(convention="custom"), "sets CUSTOM; the value is ignored, as in C"),
    Flag(("-distance",), 1, _set("distance", unit=MM, also={"pivot": "beam"}), "sample to beam spot distance (mm, default 100)"),
    Flag(("-close_distance",), 1, _set("close_distance", unit=MM, also={"pivot": "sample"}), "sample to near point distance (mm)"),
    Flag(("-detector_abs",), 1, _detector_abs, "sensor attenuation depth (um; inf or 0 = off)"),
    Flag(("-detector_thick",), 1, _set("detector_thick", unit=UM_THICK), "sensor thickness (um, default 0)", length=15),
    Flag(("-detector_thicksteps",), 1, _set("detector_thicksteps", to_int), "sensor layers"),
    Flag(("-thicksteps",), 1, _set("detector_thicksteps", to_int), "sensor layers"),
    Flag(("-twotheta",), 1, _set("detector_twotheta", unit=DEG, also={"pivot": "sample"}), "detector 2theta swing (deg)"),
    Flag(("-detector_rotx",), 1, _set("detector_rotx", unit=DEG), "detector rotation about lab x (deg)"),
    Flag(("-detector_roty",), 1, _set("detector_roty", unit=DEG), "detector rotation about lab y (deg)"),
    Flag(("-detector_rotz",), 1, _set("detector_rotz", unit=DEG), "detector rotation about lab z (deg)"),
    Flag(("-detsize",), 1, _set_many(("detsize_f", "detsize_s"), MM), "detector size (mm, default 102.4)", length=8),
    Flag(("-detsize_f",), 1, _set("detsize_f", unit=MM), "detector fast size (mm)"),
    Flag(("-detsize_s",), 1, _set("detsize_s", unit=MM), "detector slow size (mm)"),
    Flag(("-detpixels",), 1, _set_many(("fpixels", "spixels"), convert=to_int), "detector size in pixels", length=10),
    Flag(("-detpixels_f", "-detpixels_x"), 1, _set("fpixels", to_int), "fast pixels"),
    Flag(("-detpixels_s", "-detpixels_y"), 1, _set("spixels", to_int), "slow pixels"),
    Flag(("-curved_det",), 0, _const(curved_detector=True), "all pixels at the same distance from the sample", needs_next=True),
    Flag(("-pixel",), 1, _set("pixel_size", unit=MM), "pixel size (mm, default 0.1)"),
    Flag(("-point_pixel",), 0, _const(point_pixel=True), "solid angle 1/R^2 (no obliquity)"),
    Flag(("-polar",), 1, _set("polarization", also={"nopolar": False}), "Kahn polarization factor (default 0)", length=6),
    Flag(("-nopolar",), 0, _const(nopolar=True), "polarization factor 1"),
    Flag(("-oversample_thick",), 0, _const(oversample_thick=True), "re-evaluate sensor absorption per sub-pixel", stop=True),
    Flag(("-oversample_polar",), 0, _const(oversample_polar=True), "re-evaluate polarization per sub-pixel", stop=True),
    Flag(("-oversample_omega",), 0, _const(oversample_omega=True), "re-evaluate solid angle per sub-pixel", stop=True),
    Flag(("-oversample",), 1, _set("oversample", to_int), "sub-pixels per pixel edge (default auto)"),
    Flag(("-roi",), 4, _roi, "render only xmin xmax ymin ymax (pixels, inclusive)"),
    Flag(("-lambda", "-wave"), 1, _set("lambda0", unit=ANGSTROM), "wavelength (A, default 1)"),
    Flag(("-energy",), 1, _energy, "photon energy (eV)"),
    Flag(("-fluence",), 1, _set("fluence"), "photons/m^2 (default 1.25932e29)"),
    Flag(("-flux",), 1, _set("flux"), "photons/s (with -exposure, -beamsize)"),
    Flag(("-exposure",), 1, _set("exposure"), "exposure time (s, default 1)"),
    Flag(("-beamsize",), 1, _set("beamsize", unit=MM), "beam size (mm, default 0.1)"),
    Flag(("-mosaic_spr", "-mosaici"), 1, _set("mosaic_spread", unit=DEG), "mosaic spread (deg)"),
    Flag(("-mosaic",), 1, _set("mosaic_spread", unit=DEG), "mosaic spread (deg)", length=7),
    Flag(("-mosaic_dom",), 1, _set("mosaic_domains", to_int), "mosaic domains (default 10 when spread > 0)"),
    Flag(("-dispersion",), 1, _set("dispersion", unit=PERCENT), "spectral dispersion (percent)"),
    Flag(("-dispsteps",), 1, _set("dispsteps", to_int), "wavelength steps"),
    Flag(("-divergence",), 1, _set_many(("hdivrange", "vdivrange"), MM), "beam divergence (mrad)"),
    Flag(("-hdivrange",), 1, _set("hdivrange", unit=MM), "horizontal divergence (mrad)"),
    Flag(("-vdivrange",), 1, _set("vdivrange", unit=MM), "vertical divergence (mrad)"),
    Flag(("-hdivstep",), 1, _set("hdivstep", unit=MM), "horizontal divergence step (mrad)", length=9),
    Flag(("-hdivsteps",), 1, _set("hdivsteps", to_int), "horizontal divergence steps"),
    Flag(("-vdivstep",), 1, _set("vdivstep", unit=MM), "vertical divergence step (mrad)", length=9),
    Flag(("-vdivsteps",), 1, _set("vdivsteps", to_int), "vertical divergence steps"),
    Flag(("-divsteps",), 1, _set_many(("hdivsteps", "vdivsteps"), convert=to_int), "divergence steps, both axes"),
    Flag(("-round_div",), 0, _const(round_div=True), "trim the divergence grid to an ellipse (default)"),
    Flag(("-square_div",), 0, _const(round_div=False), "full divergence grid"),
    Flag(("-adc",), 1, _set("adc_offset"), "SMV pixel offset (default 40)"),
    Flag(("-phi",), 1, _set("phi0", unit=DEG), "start phi (deg)", length=4),
    Flag(("-osc",), 1, _set("osc", unit=DEG), "oscillation range (deg)"),
    Flag(("-phistep",), 1, _set("phistep", unit=DEG), "phi step (deg)", length=8),
    Flag(("-phisteps",), 1, _set("phisteps", to_int), "phi steps"),
    Flag(("-dmin",), 1, _set("dmin", unit=DMIN), "skip resolution beyond d (A)"),
    Flag(("-mat",), 1, _file("matfile"), "MOSFLM-style A matrix file"),
    Flag(("-hkl",), 1, _file("hklfile"), "h k l F text file"),
    Flag(("-default_F",), 1, _set("default_F"), "F for unlisted hkl (default 0)"),
    Flag(("-dump",), 1, _file("dumpfile"), "Fdump cache file (default Fdump.bin)"),
    Flag(("-img",), 1, _file("imgfile"), "SMV file whose header sets the geometry"),
    Flag(("-stolout",), 1, _const(), "never used (as in C)", min_length=7),
    Flag(("-stol",), 1, _file("stolfile"), "read, never used (as in C)", length=5),
    Flag(("-4stol",), 1, _file("stolfile"), "read, never used (as in C)", length=6),
    Flag(("-Q",), 1, _file("stolfile"), "read, never used (as in C)", length=2),
    Flag(("-sourcefile",), 1, _file("sourcefile"), "sources: X Y Z weight lambda(m) per line"),
    Flag(("-floatfile", "-floatimage"), 1, _file("floatfile"), "float image (default floatimage.bin)"),
    Flag(("-intfile", "-intimage"), 1, _file("intfile"), "SMV image (default intimage.img)"),
    Flag(("-pgmfile", "-pgmimage"), 1, _file("pgmfile", write_pgm=True), "PGM image (default image.pgm)"),
    Flag(("-noisefile", "-noiseimage"), 1, _file("noisefile", calculate_noise=True), "noise SMV image (default noiseimage.img)"),
    Flag(("-nonoise",), 0, _const(calculate_noise=False), "do not write the noise image"),
    Flag(("-nopgm",), 0, _const(write_pgm=False), "do not write the PGM"),
    Flag(("-scale",), 1, _set("intfile_scale"), "SMV scale (default auto)"),
    Flag(("-pgmscale",), 1, _set("pgm_scale", also={"write_pgm": True}), "PGM scale (default auto)"),
    Flag(("-coherent",), 0, _const(), "parsed, no effect (as in C)"),
    Flag(("-printout",), 0, _const(printout=True), "print pixel values"),
    Flag(("-noprogress",), 0, _const(progress=False), "no progress meter"),
    Flag(("-progress",), 0, _const(progress=True), "progress meter"),
    Flag(("-interpolate",), 0, _const(interpolate=1), "tricubic F interpolation"),
    Flag(("-nointerpolate",), 0, _const(interpolate=0), "nearest-hkl F"),
    Flag(("-round_xtal",), 0, _const(xtal_shape="round"), "ellipsoidal crystal (sinc3)"),
    Flag(("-square_xtal",), 0, _const(xtal_shape="square"), "parallelepiped crystal (default)"),
    Flag(("-gauss_xtal",), 0, _const(xtal_shape="gauss"), "Gaussian spots"),
    Flag(("-binary_spots", "-tophat_spots"), 0, _const(xtal_shape="tophat"), "flat-top spots"),
    Flag(("-fudge",), 1, _set("fudge"), "spot-shape fudge factor (default 1)"),
    Flag(("-printout_pixel",), 2, _printout_pixel, "print one pixel: fast slow"),
    Flag(("-seed",), 1, _neg_seed("seed"), "noise seed (default time)"),
    Flag(("-mosaic_seed",), 1, _neg_seed("mosaic_seed"), "mosaic seed (default 12345678)"),
    Flag(("-misset_seed",), 1, _neg_seed("misset_seed"), "random misset seed (default time; also fires -misset)"),
    Flag(("-water",), 1, _set("water_size", unit=UM_WATER), "water background thickness (um)"),
)

# nbjax's own flags: exact names that no C pattern matches.
NBJAX_FLAGS: tuple[Flag, ...] = (
    Flag(("-precision",), 1, _precision, "double (default) or single", exact=True),
    Flag(("-physical",), 0, _const(physical=True), "intended physics: weights honoured, per-sample factors", exact=True),
    Flag(("-tile",), 1, _tile, "pixels per kernel tile (default auto)", exact=True),
    Flag(("-demo",), 0, _const(demo=True), "render the built-in default pattern", exact=True),
    Flag(("-fastnoise",), 0, _const(fast_noise=True), "noise image from jax.random: same Poisson statistics, not C's exact stream", exact=True),
    Flag(("-force",), 0, _const(force=True), "run even when the estimated time exceeds the limit (1 h; memory limits still apply)", exact=True),
)

HELP_FLAGS = ("-h", "--help", "-help")


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
        return NBError(f"{token} must not be the last argument: nanoBragg only reads it when another argument follows, "
                       "and silently ignores it otherwise; move it before another flag")
    return NBError(f"{token} needs {_values_text(wanted)}, got {have if have else 'none'}: nanoBragg would silently "
                   "ignore the flag and use its default; give the value" + ("s" if wanted > 1 else ""))


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
    for flag in FLAGS + NBJAX_FLAGS:
        name = " | ".join(flag.patterns)
        if (name, flag.help) in seen:
            continue
        seen.add((name, flag.help))
        args = f" <{flag.nargs} value{'s' if flag.nargs > 1 else ''}>" if flag.nargs else ""
        lines.append(f"  {name + args:<40s} {flag.help}")
    lines.append("")
    lines.append("Matching follows nanoBragg: flags match by substring unless noted in the reference notes.")
    return "\n".join(lines)
