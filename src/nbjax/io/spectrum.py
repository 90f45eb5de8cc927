"""Measured X-ray spectra (``-spectrum``): two columns per line, wavelength or photon energy,
then weight.

    # eV
    9495.0   0.12
    9500.0   1.00
    9505.0   0.31

``#`` starts a comment (a whole line or the rest of one); blank lines are skipped; columns are
separated by white space or commas.  The unit of the first column:

- a header comment that is only a unit decides it: ``# eV`` for photon energies in eV,
  ``# A``, ``# Angstrom`` (or ``# Å``) for wavelengths in Angstrom (case is ignored except for
  the single letter ``A``; ``# unit: eV`` and ``# units = A`` are accepted too);
- without one, the magnitude decides: values > 100 are photon energies in eV (no X-ray
  wavelength is 100 A), values <= 100 are wavelengths in Angstrom; a file with both is refused.

An energy E becomes the wavelength 12398.42 / E Angstrom (``HC_EV_ANGSTROM``, the C program's
``-energy`` literal), and a wavelength x Angstrom becomes x / 1e10 m, as the C program converts
``-energy`` and ``-lambda``.  Every channel becomes one source along the beam
(``nbjax.setup.sources.from_spectrum``).  Every line nbjax cannot use is an NBError naming the
file and line: not exactly two columns, a token that is not a finite number, a wavelength or
energy <= 0, a negative weight where weights are honoured (``-physical``), conflicting unit
headers, mixed magnitudes; and a file without channels.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re

import numpy as np

from nbjax.ctables.constants import HC_EV_ANGSTROM
from nbjax.errors import NBError, os_error_text, quote_text, shown_path
from nbjax.io.cformat import parse_c_float

EV_THRESHOLD = 100.0  # first-column values above this are photon energies (eV) when no header says
COLUMNS = 2
# unit header comments (the comment's text, stripped, "unit:"/"units =" prefix removed)
_UNIT_WORDS = {"ev": "eV", "a": "A", "å": "A", "angstrom": "A", "angstroms": "A", "ångström": "A", "ångströms": "A"}
_UNIT_PREFIX = re.compile(r"units?\s*[:=]?\s*", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s,]+")


@dataclasses.dataclass(frozen=True)
class SpectrumChannels:
    """The channels of a spectrum file: ``wavelengths`` (n,) in metres, ``weights`` (n,) as
    written, ``lines`` the file line of each channel, ``unit`` of the first column ("eV" or
    "A") and ``unit_source`` (how it was decided: "header line N" or "magnitude")."""

    wavelengths: np.ndarray
    weights: np.ndarray
    lines: tuple[int, ...]
    unit: str
    unit_source: str

    def mean_wavelength(self) -> float:
        """The weighted mean wavelength (m); the plain mean when the weights are not a
        distribution (a negative weight, or none positive)."""
        w = self.weights
        if np.all(w >= 0) and np.sum(w) > 0:
            return float(np.sum(w * self.wavelengths) / np.sum(w))
        return float(np.mean(self.wavelengths))


def _unit_of_comment(comment: str) -> str | None:
    """The unit a comment names when its whole text is a unit (see the module docstring)."""
    text = comment.strip()
    text = _UNIT_PREFIX.sub("", text, count=1) if _UNIT_PREFIX.match(text) else text
    text = text.strip().rstrip(".")
    if text == "A" or (text.lower() in _UNIT_WORDS and text.lower() != "a"):
        return _UNIT_WORDS[text.lower()]
    return None


def read_spectrum(path: str | os.PathLike, *, nonnegative_weights: bool = False) -> SpectrumChannels:
    """Read a spectrum file (module docstring).  ``nonnegative_weights``: refuse a negative
    weight, naming its line (physical mode honours the weights; the C-compatible mode ignores
    them, as it ignores a source file's)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    try:
        text = data.decode("utf-8")  # '# Å'
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    where = shown_path(path)
    unit, unit_line = None, 0
    rows, lines = [], []
    for number, raw in enumerate(text.split("\n"), start=1):
        body, hash_sign, comment = raw.partition("#")
        if hash_sign and not body.strip():
            named = _unit_of_comment(comment)
            if named is not None:
                if unit is not None and named != unit:
                    raise NBError(f"{where} line {number}: unit '{named}' contradicts '# {unit}' on line {unit_line}")
                unit, unit_line = named, number
        tokens = [t for t in _SEPARATORS.split(body.strip()) if t]
        if not tokens:
            continue
        values = []
        for token in tokens:
            value = parse_c_float(token)
            if value is None:
                raise NBError(f"{where} line {number}: '{quote_text(token)}' is not a number")
            if not math.isfinite(value):
                raise NBError(f"{where} line {number}: '{quote_text(token)}' is not a finite number")
            values.append(value)
        if len(values) != COLUMNS:
            raise NBError(
                f"{where} line {number}: expected 2 columns (wavelength in A or energy in eV, weight), "
                f"found {len(values)}"
            )
        rows.append(values)
        lines.append(number)
    if not rows:
        raise NBError(f"{where}: no spectrum channels (expected lines of: wavelength in A or energy in eV, weight)")
    first = np.array([r[0] for r in rows], dtype=np.float64)
    weights = np.array([r[1] for r in rows], dtype=np.float64)
    unit_source = "magnitude" if unit is None else f"header line {unit_line}"
    if unit is None:
        unit = "eV" if first[0] > EV_THRESHOLD else "A"
    for k, value in enumerate(first):
        if not value > 0:
            what = "photon energy" if unit == "eV" else "wavelength"
            raise NBError(f"{where} line {lines[k]}: {what} {value:g} {unit} must be positive")
    other = np.nonzero((first > EV_THRESHOLD) != (first[0] > EV_THRESHOLD))[0]
    if unit_source == "magnitude" and other.size:
        k = int(other[0])
        raise NBError(
            f"{where} line {lines[k]}: {first[k]:g} and line {lines[0]}'s {first[0]:g} are on both sides of "
            f"{EV_THRESHOLD:g} (values > {EV_THRESHOLD:g} are eV, others A); add a '# eV' or '# A' header line"
        )
    if nonnegative_weights and np.any(weights < 0):
        k = int(np.argmax(weights < 0))
        raise NBError(
            f"{where} line {lines[k]}: weight {weights[k]:g} is negative; -physical honours the weights, "
            "which must be >= 0"
        )
    if unit == "eV":
        wavelengths = np.array([(HC_EV_ANGSTROM / e) / 1.0e10 for e in first])  # as C's -energy
    else:
        wavelengths = np.array([x / 1.0e10 for x in first])  # as C's -lambda
    return SpectrumChannels(wavelengths, weights, tuple(lines), unit, unit_source)
