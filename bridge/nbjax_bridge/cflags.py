"""How the reference nanoBragg.c matches argv tokens to its option handlers.

C tests every token that starts with ``-`` against every handler in source order using
``strstr`` (substring), except ``-N``/``-MW`` (``strcmp``) and a few handlers with a ``strlen``
check. One token can fire several handlers; a few handlers ``continue`` (stop testing the token).
A handler fires only when enough tokens follow it (``argc > i+N``). Values are never consumed.
See the reference notes, sections 0 and 1.

This module is a table of those rules (written from the documented behaviour) plus a simulator;
the bridge uses it to find input files in ARGS and the linter uses it to find collisions,
unknown flags and flags that C ignores.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pattern:
    text: str
    mode: str = "sub"  # sub: strstr; exact: strcmp; len: strstr and strlen == n; longer: strlen > n
    length: int = 0

    def matches(self, token: str) -> bool:
        if self.mode == "exact":
            return token == self.text
        if self.text not in token:
            return False
        if self.mode == "len":
            return len(token) == self.length
        if self.mode == "longer":
            return len(token) > self.length
        return True


def _p(*texts: str) -> tuple[Pattern, ...]:
    return tuple(Pattern(t) for t in texts)


@dataclass(frozen=True)
class Handler:
    name: str                       # canonical spelling, e.g. "-detpixels"
    patterns: tuple[Pattern, ...]
    nargs: int = 0                  # tokens that must follow (argc > i+nargs); 0 for switches
    stops: bool = False             # C `continue`s after it fires
    role: str = ""                  # input, maybe_input, output, float, convention, custom
    prepass: bool = False           # handled in C's pre-pass (-img/-mask)
    uses: int | None = None         # values it reads (default nargs)

    def matches(self, token: str) -> bool:
        return any(p.matches(token) for p in self.patterns)

    @property
    def nvalues(self) -> int:
        return self.nargs if self.uses is None else self.uses


def _h(name, patterns=None, nargs=0, **kw) -> Handler:
    return Handler(name, patterns if patterns is not None else _p(name), nargs, **kw)


def _exact_len(text: str) -> tuple[Pattern, ...]:
    return (Pattern(text, "len", len(text)),)


# Pre-pass (C reads the mask, then the img header, before the main pass).
PREPASS = (
    _h("-img", nargs=1, role="input", prepass=True),
    _h("-mask", nargs=1, role="input", prepass=True),
)

# Main pass, in C source order. ``-misset`` is two handlers in C (random / numeric); the simulator
# special-cases them.
HANDLERS = (
    _h("-Na", nargs=1, stops=True),
    _h("-Nb", nargs=1, stops=True),
    _h("-Nc", nargs=1, stops=True),
    _h("-N", (Pattern("-N", "exact"),), 1, stops=True),
    _h("-cell", nargs=1, uses=6),
    _h("-misset random", _p("-misset"), 1),
    _h("-misset", nargs=3),
    _h("-samplesize", _p("-samplesize", "-sample_size"), 1),
    _h("-sample_thick", _p("-sample_thick", "-sample_x"), 1),
    _h("-sample_width", _p("-sample_width", "-sample_y", "-width"), 1),
    _h("-sample_height", _p("-sample_heigh", "-sample_z", "-heigh"), 1),
    _h("-xtalsize", _p("-xtalsize", "-xtal_size"), 1),
    _h("-xtal_thick", _p("-xtal_thick", "-xtal_x"), 1),
    _h("-xtal_width", _p("-xtal_width", "-xtal_y", "-width"), 1),
    _h("-xtal_height", _p("-xtal_heigh", "-xtal_z", "-heigh"), 1),
    _h("-density", _p("-density", "-sample_den"), 1),
    _h("-MW", (Pattern("-MW", "exact"), Pattern("-molec")), 1),
    _h("-Xbeam", nargs=1),
    _h("-Ybeam", nargs=1),
    _h("-Xclose", nargs=1),
    _h("-Yclose", nargs=1),
    _h("-ORGX", nargs=1),
    _h("-ORGY", nargs=1),
    _h("-pivot", nargs=1),
    _h("-mosflm", role="convention"),
    _h("-xds", role="convention"),
    _h("-adxv", role="convention"),
    _h("-denzo", role="convention"),
    _h("-dials", role="convention"),
    _h("-fdet_vector", nargs=3, role="custom"),
    _h("-sdet_vector", nargs=3, role="custom"),
    _h("-odet_vector", nargs=3, role="custom"),
    _h("-beam_vector", nargs=3, role="custom"),
    _h("-polar_vector", nargs=3, role="custom"),
    _h("-spindle_axis", nargs=3, role="custom"),
    _h("-twotheta_axis", nargs=3, role="custom"),
    _h("-pix0_vector", nargs=3, role="custom"),
    _h("-distance", nargs=1),
    _h("-close_distance", nargs=1),
    # C tests argc >= i+1 here (always true): they fire even when last and then read argv[argc].
    _h("-detector_abs", nargs=0, uses=1),
    _h("-detector_thick", _exact_len("-detector_thick"), 0, uses=1),
    _h("-detector_thicksteps", nargs=0, uses=1),
    _h("-thicksteps", nargs=0, uses=1),
    _h("-twotheta", nargs=1),
    _h("-detector_rotx", nargs=1),
    _h("-detector_roty", nargs=1),
    _h("-detector_rotz", nargs=1),
    _h("-detsize", _exact_len("-detsize"), 1),
    _h("-detsize_f", nargs=1),
    _h("-detsize_s", nargs=1),
    _h("-detpixels", _exact_len("-detpixels"), 1),
    _h("-detpixels_f", _p("-detpixels_f", "-detpixels_x"), 1),
    _h("-detpixels_s", _p("-detpixels_s", "-detpixels_y"), 1),
    _h("-curved_det", nargs=1, uses=0),
    _h("-pixel", nargs=1),
    _h("-point_pixel"),
    _h("-polar", _exact_len("-polar"), 1),
    _h("-nopolar"),
    _h("-oversample_thick", stops=True),
    _h("-oversample_polar", stops=True),
    _h("-oversample_omega", stops=True),
    _h("-oversample", nargs=1),
    _h("-roi", nargs=4),
    _h("-lambda", _p("-lambda", "-wave"), 1),
    _h("-energy", nargs=1),
    _h("-fluence", nargs=1),
    _h("-flux", nargs=1),
    _h("-exposure", nargs=1),
    _h("-beamsize", nargs=1),
    _h("-mosaic", (Pattern("-mosaic", "len", 7), Pattern("-mosaici"), Pattern("-mosaic_spr")), 1),
    _h("-mosaic_dom", nargs=1),
    _h("-dispersion", nargs=1),
    _h("-dispsteps", nargs=1),
    _h("-divergence", nargs=1),
    _h("-hdivrange", nargs=1),
    _h("-vdivrange", nargs=1),
    _h("-hdivstep", _exact_len("-hdivstep"), 1),
    _h("-hdivsteps", nargs=1),
    _h("-vdivstep", _exact_len("-vdivstep"), 1),
    _h("-vdivsteps", nargs=1),
    _h("-divsteps", nargs=1),
    _h("-round_div"),
    _h("-square_div"),
    _h("-adc", nargs=1),
    _h("-phi", _exact_len("-phi"), 1),
    _h("-osc", nargs=1),
    _h("-phistep", _exact_len("-phistep"), 1),
    _h("-phisteps", nargs=1),
    _h("-dmin", nargs=1),
    _h("-mat", nargs=1, role="input"),
    _h("-hkl", nargs=1, role="input"),
    _h("-default_F", nargs=1),
    _h("-dump", nargs=1, role="maybe_input"),
    _h("-img", nargs=1, role="input"),
    _h("-stolout", (Pattern("-stolout", "longer", 7),), 1, role="output"),
    _h("-stol", _exact_len("-stol"), 1, role="input"),
    _h("-4stol", _exact_len("-4stol"), 1, role="input"),
    _h("-Q", _exact_len("-Q"), 1, role="input"),
    _h("-sourcefile", nargs=1, role="input"),
    _h("-floatfile", _p("-floatfile", "-floatimage"), 1, role="float"),
    _h("-intfile", _p("-intfile", "-intimage"), 1, role="output"),
    _h("-pgmfile", _p("-pgmfile", "-pgmimage"), 1, role="output"),
    _h("-noisefile", _p("-noisefile", "-noiseimage"), 1, role="output"),
    _h("-nonoise"),
    _h("-nopgm"),
    _h("-scale", nargs=1),
    _h("-pgmscale", nargs=1),
    _h("-coherent"),
    _h("-printout"),
    _h("-noprogress"),
    _h("-progress"),
    _h("-interpolate"),
    _h("-nointerpolate"),
    _h("-round_xtal"),
    _h("-square_xtal"),
    _h("-gauss_xtal"),
    _h("-tophat_spots", _p("-binary_spots", "-tophat_spots")),
    _h("-fudge", nargs=1),
    _h("-printout_pixel", nargs=2),
    _h("-seed", nargs=1),
    _h("-mosaic_seed", nargs=1),
    _h("-misset_seed", nargs=1),
    _h("-water", nargs=1),
)

# Spellings that are "the" name of a flag (anything else that fires is a substring alias).
CANONICAL = frozenset(
    {p.text for h in PREPASS + HANDLERS for p in h.patterns}
    | {"-mosaic_domains", "-mosaic_spread", "-mosaicity", "-sample_height", "-xtal_height",
       "-height", "-sample_density", "-molecules", "-oversample_thick", "-oversample_polar",
       "-oversample_omega"}
) - {"-misset random"}

# Token -> handlers that C fires together on purpose (same effect), not worth a collision finding.
BENIGN_COMBOS = (
    frozenset({"-printout", "-printout_pixel"}),
    frozenset({"-sample_width", "-xtal_width"}),
    frozenset({"-sample_height", "-xtal_height"}),
    frozenset({"-misset random", "-misset"}),
)


def is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


@dataclass
class Firing:
    """One handler firing on argv[index] (index into the ARGS list, program name excluded)."""

    index: int
    token: str
    handler: Handler

    @property
    def name(self) -> str:
        return self.handler.name


@dataclass
class ParsedArgv:
    tokens: list[str]
    firings: list[Firing] = field(default_factory=list)
    # tokens starting with '-' that are not numbers and match no handler at all
    unknown: list[int] = field(default_factory=list)
    # (index, handler) for handlers whose pattern matched but that lacked following tokens
    starved: list[tuple[int, Handler]] = field(default_factory=list)

    def by_index(self, index: int) -> list[Firing]:
        return [f for f in self.firings if f.index == index]

    def named(self, name: str) -> list[Firing]:
        return [f for f in self.firings if f.name == name]

    def value(self, firing: Firing, k: int = 0) -> str | None:
        j = firing.index + 1 + k
        return self.tokens[j] if j < len(self.tokens) else None

    def last_value(self, name: str, default: str | None = None) -> str | None:
        hits = self.named(name)
        if not hits:
            return default
        v = self.value(hits[-1])
        return default if v is None else v


def parse(tokens: list[str]) -> ParsedArgv:
    """Simulate which C handlers fire for each token of ARGS (argv without the program name)."""
    tokens = list(tokens)
    out = ParsedArgv(tokens)
    n = len(tokens)
    for j, token in enumerate(tokens):
        if not token.startswith("-"):
            continue
        matched_any = False
        for h in PREPASS:
            if h.matches(token):
                matched_any = True
                if j + h.nargs < n:
                    out.firings.append(Firing(j, token, h))
                else:
                    out.starved.append((j, h))
        for h in HANDLERS:
            if not h.matches(token):
                continue
            matched_any = True
            if h.name == "-img":  # already recorded by the pre-pass
                continue
            if not j + h.nargs < n:
                out.starved.append((j, h))
                continue
            if h.name == "-misset random":
                if "rand" in tokens[j + 1]:
                    out.firings.append(Firing(j, token, h))
                    break  # C: continue
                continue
            out.firings.append(Firing(j, token, h))
            if h.stops:
                break
        if not matched_any and not is_number(token):
            out.unknown.append(j)
    # -misset random and the numeric -misset both on one token cannot happen (continue), but a
    # starved entry for the numeric one after a random one is noise: drop it.
    fired = {(f.index, f.name) for f in out.firings}
    out.starved = [(j, h) for (j, h) in out.starved
                   if not (h.name == "-misset" and (j, "-misset random") in fired)
                   and not (h.name == "-misset random")]
    return out


def convention(parsed: ParsedArgv) -> str:
    """The beam convention C ends with: the last convention flag or custom vector wins."""
    conv = "MOSFLM"
    for f in parsed.firings:
        if f.handler.role == "convention":
            conv = f.name[1:].upper()
        elif f.handler.role == "custom":
            conv = "CUSTOM"
    return conv


CONVENTION_BEAM = {
    "MOSFLM": (1.0, 0.0, 0.0),
    "DENZO": (1.0, 0.0, 0.0),
    "XDS": (0.0, 0.0, 1.0),
    "DIALS": (0.0, 0.0, 1.0),
    "ADXV": (0.0, 0.0, 1.0),
    "CUSTOM": (1.0, 0.0, 0.0),
}


def beam_direction(parsed: ParsedArgv) -> tuple[str, tuple[float, float, float]]:
    """Convention name and the beam direction C uses (CUSTOM: the last -beam_vector, unitized)."""
    conv = convention(parsed)
    beam = CONVENTION_BEAM[conv]
    if conv == "CUSTOM":
        for f in parsed.named("-beam_vector"):
            try:
                v = [float(parsed.tokens[f.index + k]) for k in (1, 2, 3)]
            except ValueError:
                continue
            norm = sum(x * x for x in v) ** 0.5
            if norm > 0:
                beam = tuple(x / norm for x in v)
    return conv, beam
