"""nanoBragg's command line as data: one row per option handler of the C main loop, in order.

The C program tests every argv token that starts with '-' against every handler in turn.  A
pattern matches by ``strstr`` (substring) unless its rule says otherwise:

- ``exact``: ``strcmp`` (``-N``, ``-MW``), or ``strstr`` plus ``strlen(token) == strlen(pattern)``
  (``-detpixels``, ``-phi``, ...), which is the same thing;
- ``longer``: ``strstr`` plus ``strlen(token) > strlen(pattern)`` (``-stolout``).

A handler fires when one of its patterns matches and C's count test passes: ``argc > i+needs``
(``needs`` tokens follow the flag).  ``needs`` is the number of values it reads except for
C's off-by-one handlers: ``-detector_abs``, ``-detector_thick`` and the thickness-step flags
test ``argc >= i+1`` (``needs`` 0 although they read one value: when last they read
``argv[argc]``, NULL), and ``-curved_det`` requires a following token it never reads.  Most
handlers do not stop the scan, so one token can fire several (``-twotheta_axis`` also fires
``-twotheta``); those that end with ``continue`` have ``stop``.  Values are never consumed:
a value that starts with '-' is tested as a flag too.  Reference notes, sections 0 and 1.

Consumers: ``nbjax.cli.flags`` (adds how each row sets RunSettings), ``nbjax_bridge.cflags``
(simulates which handlers fire, for the linter and the input finder), the help text.
"""

from __future__ import annotations

from dataclasses import dataclass

SUBSTRING, EXACT, LONGER = "sub", "exact", "longer"


@dataclass(frozen=True)
class Pattern:
    text: str
    rule: str = SUBSTRING  # sub | exact | longer (see the module notes)

    def matches(self, token: str) -> bool:
        if self.rule == EXACT:
            return token == self.text
        if self.rule == LONGER:
            return self.text in token and len(token) > len(self.text)
        return self.text in token


@dataclass(frozen=True)
class Option:
    """One C handler.  ``name``: its usual spelling (unique key); ``values``: tokens it reads
    (``optional`` more when present: -cell reads up to 6, stopping at a token that starts with
    '-'); ``needs``: tokens C requires after it before it fires (default ``values``)."""

    name: str
    patterns: tuple[Pattern, ...]
    values: int = 0
    help: str = ""
    needs: int | None = None
    optional: int = 0
    stop: bool = False
    role: str = ""  # input | maybe_input | output | float | convention | custom | "" (plain value)
    prepass: bool = False  # read in C's pre-pass (-img, -mask), before the main loop

    def matches(self, token: str) -> bool:
        return any(p.matches(token) for p in self.patterns)

    @property
    def c_needs(self) -> int:
        """C's count test: the handler fires when ``argc > i + c_needs``."""
        return self.values if self.needs is None else self.needs

    @property
    def reads(self) -> int:
        """The most values the handler reads."""
        return self.values + self.optional


def _pats(specs) -> tuple[Pattern, ...]:
    return tuple(p if isinstance(p, Pattern) else Pattern(p) for p in specs)


def opt(name: str, values: int = 0, help: str = "", *, patterns=None, **kw) -> Option:
    """A row; ``patterns`` default to the name, as a substring pattern."""
    return Option(name, _pats(patterns if patterns is not None else (name,)), values, help, **kw)


def exact(text: str) -> Pattern:
    return Pattern(text, EXACT)


# C's pre-pass: it reads the mask, then the img header, before the main loop (reference D13).
PREPASS: tuple[Option, ...] = (
    opt("-img", 1, "SMV file whose header sets the geometry", role="input", prepass=True),
    opt(
        "-mask",
        1,
        "SMV mask: pixels with value 0 are skipped; its header sets the geometry",
        role="input",
        prepass=True,
    ),
)

# The main loop, in the C program's order.
C_OPTIONS: tuple[Option, ...] = (
    opt("-Na", 1, "unit cells along a (default 1)", stop=True),
    opt("-Nb", 1, "unit cells along b (default 1)", stop=True),
    opt("-Nc", 1, "unit cells along c (default 1)", stop=True),
    opt("-N", 1, "unit cells in all directions", patterns=(exact("-N"),), stop=True),
    opt("-cell", 1, "unit cell a b c (A) alpha beta gamma (deg); missing b,c = a, angles 90", optional=5),
    opt("-misset random", 1, "-misset random: random orientation (seed -misset_seed)", patterns=("-misset",)),
    opt("-misset", 3, "crystal rotations about x, y, z (deg), applied to the reciprocal cell"),
    opt("-samplesize", 1, "crystal size, all axes (mm)", patterns=("-samplesize", "-sample_size")),
    opt("-sample_thick", 1, "crystal size along x (mm)", patterns=("-sample_thick", "-sample_x")),
    opt("-sample_width", 1, "crystal size along y (mm)", patterns=("-sample_width", "-sample_y", "-width")),
    opt("-sample_height", 1, "crystal size along z (mm)", patterns=("-sample_heigh", "-sample_z", "-heigh")),
    opt("-xtalsize", 1, "crystal size, all axes (mm); N = ceil(size/cell)", patterns=("-xtalsize", "-xtal_size")),
    opt("-xtal_thick", 1, "crystal size along x (mm)", patterns=("-xtal_thick", "-xtal_x")),
    opt("-xtal_width", 1, "crystal size along y (mm)", patterns=("-xtal_width", "-xtal_y", "-width")),
    opt("-xtal_height", 1, "crystal size along z (mm)", patterns=("-xtal_heigh", "-xtal_z", "-heigh")),
    opt("-density", 1, "sample density (parsed, no effect, as in C)", patterns=("-density", "-sample_den")),
    opt("-MW", 1, "molecular weight (parsed, no effect, as in C)", patterns=(exact("-MW"), "-molec")),
    opt("-Xbeam", 1, "direct-beam X in the convention's frame (mm)"),
    opt("-Ybeam", 1, "direct-beam Y in the convention's frame (mm)"),
    opt("-Xclose", 1, "near-point X (mm; CUSTOM only)"),
    opt("-Yclose", 1, "near-point Y (mm; CUSTOM only)"),
    opt("-ORGX", 1, "XDS origin, fast (pixels)"),
    opt("-ORGY", 1, "XDS origin, slow (pixels)"),
    opt("-pivot", 1, "beam|sample: detector pivot (CUSTOM only; conventions re-assert theirs)"),
    opt("-mosflm", 0, "MOSFLM convention (default)", role="convention"),
    opt("-xds", 0, "XDS convention", role="convention"),
    opt("-adxv", 0, "ADXV convention", role="convention"),
    opt("-denzo", 0, "DENZO convention", role="convention"),
    opt("-dials", 0, "DIALS convention", role="convention"),
    opt("-fdet_vector", 3, "fast-axis unit vector (sets CUSTOM)", role="custom"),
    opt("-sdet_vector", 3, "slow-axis unit vector (sets CUSTOM)", role="custom"),
    opt("-odet_vector", 3, "detector normal (sets CUSTOM)", role="custom"),
    opt("-beam_vector", 3, "x-ray beam direction (sets CUSTOM)", role="custom"),
    opt("-polar_vector", 3, "E-vector polarization direction (sets CUSTOM)", role="custom"),
    opt("-spindle_axis", 3, "phi rotation axis (sets CUSTOM)", role="custom"),
    opt("-twotheta_axis", 3, "2theta axis (sets CUSTOM; also fires -twotheta)", role="custom"),
    opt("-pix0_vector", 3, "sets CUSTOM; the value is ignored, as in C", role="custom"),
    opt("-distance", 1, "sample to beam spot distance (mm, default 100)"),
    opt("-close_distance", 1, "sample to near point distance (mm)"),
    opt("-detector_abs", 1, "sensor attenuation depth (um; inf or 0 = off)", needs=0),
    opt("-detector_thick", 1, "sensor thickness (um, default 0)", patterns=(exact("-detector_thick"),), needs=0),
    opt("-detector_thicksteps", 1, "sensor layers", needs=0),
    opt("-thicksteps", 1, "sensor layers", needs=0),
    opt("-twotheta", 1, "detector 2theta swing (deg)"),
    opt("-detector_rotx", 1, "detector rotation about lab x (deg)"),
    opt("-detector_roty", 1, "detector rotation about lab y (deg)"),
    opt("-detector_rotz", 1, "detector rotation about lab z (deg)"),
    opt("-detsize", 1, "detector size (mm, default 102.4)", patterns=(exact("-detsize"),)),
    opt("-detsize_f", 1, "detector fast size (mm)"),
    opt("-detsize_s", 1, "detector slow size (mm)"),
    opt("-detpixels", 1, "detector size in pixels", patterns=(exact("-detpixels"),)),
    opt("-detpixels_f", 1, "fast pixels", patterns=("-detpixels_f", "-detpixels_x")),
    opt("-detpixels_s", 1, "slow pixels", patterns=("-detpixels_s", "-detpixels_y")),
    opt("-curved_det", 0, "all pixels at the same distance from the sample", needs=1),
    opt("-pixel", 1, "pixel size (mm, default 0.1)"),
    opt("-point_pixel", 0, "solid angle 1/R^2 (no obliquity)"),
    opt("-polar", 1, "Kahn polarization factor (default 0)", patterns=(exact("-polar"),)),
    opt("-nopolar", 0, "polarization factor 1"),
    opt("-oversample_thick", 0, "re-evaluate sensor absorption per sub-pixel", stop=True),
    opt("-oversample_polar", 0, "re-evaluate polarization per sub-pixel", stop=True),
    opt("-oversample_omega", 0, "re-evaluate solid angle per sub-pixel", stop=True),
    opt("-oversample", 1, "sub-pixels per pixel edge (default auto)"),
    opt("-roi", 4, "render only xmin xmax ymin ymax (pixels, inclusive)"),
    opt("-lambda", 1, "wavelength (A, default 1)", patterns=("-lambda", "-wave")),
    opt("-energy", 1, "photon energy (eV)"),
    opt("-fluence", 1, "photons/m^2 (default 1.25932e29)"),
    opt("-flux", 1, "photons/s (with -exposure, -beamsize)"),
    opt("-exposure", 1, "exposure time (s, default 1)"),
    opt("-beamsize", 1, "beam size (mm, default 0.1)"),
    opt("-mosaic", 1, "mosaic spread (deg)", patterns=(exact("-mosaic"), "-mosaici", "-mosaic_spr")),
    opt("-mosaic_dom", 1, "mosaic domains (default 10 when spread > 0)"),
    opt("-dispersion", 1, "spectral dispersion (percent)"),
    opt("-dispsteps", 1, "wavelength steps"),
    opt("-divergence", 1, "beam divergence (mrad)"),
    opt("-hdivrange", 1, "horizontal divergence (mrad)"),
    opt("-vdivrange", 1, "vertical divergence (mrad)"),
    opt("-hdivstep", 1, "horizontal divergence step (mrad)", patterns=(exact("-hdivstep"),)),
    opt("-hdivsteps", 1, "horizontal divergence steps"),
    opt("-vdivstep", 1, "vertical divergence step (mrad)", patterns=(exact("-vdivstep"),)),
    opt("-vdivsteps", 1, "vertical divergence steps"),
    opt("-divsteps", 1, "divergence steps, both axes"),
    opt("-round_div", 0, "trim the divergence grid to an ellipse (default)"),
    opt("-square_div", 0, "full divergence grid"),
    opt("-adc", 1, "SMV pixel offset (default 40)"),
    opt("-phi", 1, "start phi (deg)", patterns=(exact("-phi"),)),
    opt("-osc", 1, "oscillation range (deg)"),
    opt("-phistep", 1, "phi step (deg)", patterns=(exact("-phistep"),)),
    opt("-phisteps", 1, "phi steps"),
    opt("-dmin", 1, "skip resolution beyond d (A)"),
    opt("-mat", 1, "MOSFLM-style A matrix file", role="input"),
    opt("-hkl", 1, "h k l F text file", role="input"),
    opt("-default_F", 1, "F for unlisted hkl (default 0)"),
    opt("-dump", 1, "Fdump cache file (default Fdump.bin)", role="maybe_input"),
    opt("-img", 1, "SMV file whose header sets the geometry (read in the pre-pass)", role="input"),
    opt("-stolout", 1, "never used (as in C)", patterns=(Pattern("-stolout", LONGER),), role="output"),
    opt("-stol", 1, "read, never used (as in C)", patterns=(exact("-stol"),), role="input"),
    opt("-4stol", 1, "read, never used (as in C)", patterns=(exact("-4stol"),), role="input"),
    opt("-Q", 1, "read, never used (as in C)", patterns=(exact("-Q"),), role="input"),
    opt("-sourcefile", 1, "sources: X Y Z weight lambda(m) per line", role="input"),
    opt("-floatfile", 1, "float image (default floatimage.bin)", patterns=("-floatfile", "-floatimage"), role="float"),
    opt("-intfile", 1, "SMV image (default intimage.img)", patterns=("-intfile", "-intimage"), role="output"),
    opt("-pgmfile", 1, "PGM image (default image.pgm)", patterns=("-pgmfile", "-pgmimage"), role="output"),
    opt(
        "-noisefile",
        1,
        "noise SMV image (default noiseimage.img)",
        patterns=("-noisefile", "-noiseimage"),
        role="output",
    ),
    opt("-nonoise", 0, "do not write the noise image"),
    opt("-nopgm", 0, "do not write the PGM"),
    opt("-scale", 1, "SMV scale (default auto)"),
    opt("-pgmscale", 1, "PGM scale (default auto)"),
    opt("-coherent", 0, "parsed, no effect (as in C)"),
    opt("-printout", 0, "print pixel values"),
    opt("-noprogress", 0, "no progress meter"),
    opt("-progress", 0, "progress meter"),
    opt("-interpolate", 0, "tricubic F interpolation"),
    opt("-nointerpolate", 0, "nearest-hkl F"),
    opt("-round_xtal", 0, "ellipsoidal crystal (sinc3)"),
    opt("-square_xtal", 0, "parallelepiped crystal (default)"),
    opt("-gauss_xtal", 0, "Gaussian spots"),
    opt("-tophat_spots", 0, "flat-top spots", patterns=("-binary_spots", "-tophat_spots")),
    opt("-fudge", 1, "spot-shape fudge factor (default 1)"),
    opt("-printout_pixel", 2, "print one pixel: fast slow"),
    opt("-seed", 1, "noise seed (default time)"),
    opt("-mosaic_seed", 1, "mosaic seed (default 12345678)"),
    opt("-misset_seed", 1, "random misset seed (default time; also fires -misset)"),
    opt("-water", 1, "water background thickness (um)"),
)

# nbjax's own options: exact names that no C pattern matches (C ignores them as unknown).
NBJAX_OPTIONS: tuple[Option, ...] = (
    opt("-precision", 1, "double (default) or single", patterns=(exact("-precision"),)),
    opt("-physical", 0, "intended physics: weights honoured, per-sample factors", patterns=(exact("-physical"),)),
    opt("-tile", 1, "pixels per kernel tile (default auto)", patterns=(exact("-tile"),)),
    opt(
        "-force",
        0,
        "run even when the estimated time exceeds the limit (1 h; memory limits still apply)",
        patterns=(exact("-force"),),
    ),
    opt(
        "-devices",
        1,
        "local devices to split the tiles over (default 0 = all: on CPU one per core); same image",
        patterns=(exact("-devices"),),
    ),
    opt("-demo", 0, "render the built-in default pattern", patterns=(exact("-demo"),)),
    opt(
        "-expt",
        1,
        "DIALS experiment list: render every panel of one experiment in physical mode as a (panels, slow, fast) "
        "stack (-floatfile/-noisefile .npy or .h5)",
        patterns=(exact("-expt"),),
    ),
    opt("-expt_index", 1, "which experiment of the -expt file (default 0)", patterns=(exact("-expt_index"),)),
    opt(
        "-spectrum",
        1,
        "measured spectrum: 'wavelength weight' per line, one source each along the beam; wavelength in A, "
        "or photon energy in eV (lambda = 12398.42/E A) by a '# eV' / '# A' header line, else values > 100 "
        "are eV; # comments; sets -lambda to the weighted mean unless given; not with -sourcefile, "
        "divergence or dispersion",
        patterns=(exact("-spectrum"),),
        role="input",
    ),
    opt(
        "-mtz",
        1,
        "structure factors from an MTZ file (not with -hkl), expanded to P1 with its space group and "
        "Friedel mates; missing reflections take -default_F",
        patterns=(exact("-mtz"),),
        role="input",
    ),
    opt(
        "-mtz_column",
        1,
        "MTZ column: amplitudes (type F) or intensities (J: F = sqrt(max(I, 0))), or an anomalous "
        "F(+)/F(-) or I(+)/I(-) pair; default the first F, else the first J column",
        patterns=(exact("-mtz_column"),),
    ),
    opt(
        "-fastnoise",
        0,
        "noise image from jax.random: same Poisson statistics, not C's exact stream",
        patterns=(exact("-fastnoise"),),
    ),
)

HELP_FLAGS = ("-h", "--help", "-help")
