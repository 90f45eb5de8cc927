"""How the reference nanoBragg.c matches argv tokens to its option handlers.

C tests every token that starts with ``-`` against every handler in source order using
``strstr`` (substring), except a few exact patterns. One token can fire several handlers; a few
handlers ``continue`` (stop testing the token). A handler fires only when enough tokens follow it
(``argc > i+N``). Values are never consumed. See the reference notes, sections 0 and 1.

The rows are nbjax's table of the C handlers (:mod:`nbjax.ctables.argv`, plain data: importing
it loads no JAX); this module simulates them, so the bridge can find input files in ARGS and the
linter can find collisions, unknown flags and flags that C ignores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nbjax.ctables import argv as ctable
from nbjax.ctables.conventions import DEFAULT_CONVENTION, beam_vector

Handler = ctable.Option

# Pre-pass (C reads the mask, then the img header, before the main pass).
PREPASS = ctable.PREPASS

# Main pass, in C source order. ``-misset`` is two handlers in C (random / numeric); the simulator
# special-cases them.
HANDLERS = ctable.C_OPTIONS

# Spellings that are "the" name of a flag (anything else that fires is a substring alias).
CANONICAL = frozenset(
    {p.text for h in PREPASS + HANDLERS for p in h.patterns}
    | {
        "-mosaic_domains",
        "-mosaic_spread",
        "-mosaicity",
        "-sample_height",
        "-xtal_height",
        "-height",
        "-sample_density",
        "-molecules",
        "-oversample_thick",
        "-oversample_polar",
        "-oversample_omega",
    }
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
                if j + h.c_needs < n:
                    out.firings.append(Firing(j, token, h))
                else:
                    out.starved.append((j, h))
        for h in HANDLERS:
            if not h.matches(token):
                continue
            matched_any = True
            if h.name == "-img":  # already recorded by the pre-pass
                continue
            if not j + h.c_needs < n:
                out.starved.append((j, h))
                continue
            if h.name == "-misset random":
                if "rand" in tokens[j + 1]:
                    out.firings.append(Firing(j, token, h))
                    break  # C: continue
                continue
            out.firings.append(Firing(j, token, h))
            if h.stop:
                break
        if not matched_any and not is_number(token):
            out.unknown.append(j)
    # -misset random and the numeric -misset both on one token cannot happen (continue), but a
    # starved entry for the numeric one after a random one is noise: drop it.
    fired = {(f.index, f.name) for f in out.firings}
    out.starved = [
        (j, h)
        for (j, h) in out.starved
        if not (h.name == "-misset" and (j, "-misset random") in fired) and not (h.name == "-misset random")
    ]
    return out


def convention(parsed: ParsedArgv) -> str:
    """The beam convention C ends with: the last convention flag or custom vector wins."""
    conv = DEFAULT_CONVENTION.upper()
    for f in parsed.firings:
        if f.handler.role == "convention":
            conv = f.name[1:].upper()
        elif f.handler.role == "custom":
            conv = "CUSTOM"
    return conv


def beam_direction(parsed: ParsedArgv) -> tuple[str, tuple[float, float, float]]:
    """Convention name and the beam direction C uses (CUSTOM: the last -beam_vector, unitized)."""
    conv = convention(parsed)
    beam = tuple(float(x) for x in beam_vector(conv))
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
