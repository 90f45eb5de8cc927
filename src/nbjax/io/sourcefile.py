"""Source files (``-sourcefile``): one source per line, columns ``X Y Z I lambda``.

X, Y, Z give the source position (its direction from the sample is what matters), I is a weight
and lambda the wavelength in METERS.  Columns are separated by any of `` \\t,;:!``; missing columns
are NaN (the caller fills C's defaults: position -10 m along the beam, I=1, lambda=lambda0).

The C parser (read_text_file) is emulated token by token; every line where it would silently
produce a NaN image or a wrong source is an NBError naming the file and line.
"""

import math
import os
import re

import numpy as np

from nbjax.errors import NBError, os_error_text, quote_text, shown_path
from nbjax.io.cformat import c_atof, parse_c_float

COLUMNS = 5
DELIMITERS = " \t,;:!"  # C: strspn/strcspn set of read_text_file
NUMBER_CHARS = "0123456789-+.EGeg"  # C: the characters it skips after a number


def _span(text: str, pos: int, chars: str) -> int:
    """C strspn from ``pos``: index of the first character not in ``chars``."""
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _cspan(text: str, pos: int, chars: str) -> int:
    """C strcspn from ``pos``: index of the first character in ``chars``."""
    while pos < len(text) and text[pos] not in chars:
        pos += 1
    return pos


def c_source_values(line: str, columns: int = COLUMNS) -> list[float]:
    """The values read_text_file stores for one fgets line (which keeps its '\\n'), NaN unread."""
    values = [math.nan] * columns
    pos, i = _span(line, 0, DELIMITERS), 0
    while True:
        values[i] = c_atof(line[pos:])
        pos = _span(line, pos, NUMBER_CHARS)
        if line[pos:] == "\n":
            break
        pos = _span(line, _cspan(line, pos, DELIMITERS), DELIMITERS)
        if line[pos:] == "\n":
            break
        i += 1
        if i >= columns:
            break
    return values


def _intended(path, number: int, text: str) -> list[float]:
    """The columns as written (first five), NaN for missing ones; NBError on a bad token."""
    tokens = [tok for tok in re.split(r"[ \t,;:!]+", text) if tok]
    values = [math.nan] * COLUMNS
    for col, tok in enumerate(tokens[:COLUMNS]):
        value = parse_c_float(tok)
        if value is None:
            raise NBError(f"{path} line {number}: '{quote_text(tok)}' is not a number")
        if not math.isfinite(value):
            raise NBError(f"{path} line {number}: '{quote_text(tok)}' is not a finite number")
        values[col] = value
    return values


def _check_source(path, number: int, row: list[float]) -> None:
    x, y, z, _, wavelength = row
    if not math.isnan(wavelength) and wavelength <= 0.0:
        raise NBError(f"{path} line {number}: wavelength {wavelength:g} m must be positive")
    if x == 0.0 and y == 0.0 and z == 0.0:
        raise NBError(f"{path} line {number}: source position 0 0 0 has no direction")


def read_source_file(path: str | os.PathLike) -> np.ndarray:
    """Read a source file as an (n, 5) float64 array [X, Y, Z, I, lambda_m], NaN where missing.

    Lines that hold only delimiters are skipped, as in C; columns past the fifth are ignored.
    NBError (naming the line) for: a non-numeric token (such as a '#' comment), NaN/inf, a line
    C would fill with zeros instead of NaN (a short line ending in CRLF, a short last line without
    a final newline), a wavelength <= 0, a 0 0 0 position; and for a file with no sources.
    """
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("latin-1")
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}", exit_code=9) from None
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line or line[_span(line, 0, DELIMITERS) :] == "\n":
            continue
        c_row = c_source_values(line)
        row = _intended(path, number, line.rstrip("\r\n"))
        if not np.array_equal(c_row, row, equal_nan=True):
            raise NBError(
                f"{path} line {number}: the C program reads this line as "
                f"{' '.join(f'{v:g}' for v in c_row)}, not {' '.join(f'{v:g}' for v in row)} "
                "(a short line ending in CRLF or without a final newline gets 0, not defaults)"
            )
        _check_source(path, number, row)
        rows.append(row)
    if not rows:
        raise NBError(f"{path}: no sources found", exit_code=9)
    return np.array(rows, dtype=np.float64)


def format_source_file(positions, weights, wavelengths) -> str:
    """Source-file text: one ``X Y Z I lambda`` line per source (positions in m, lambda in m),
    with 17 significant digits so that ``read_source_file`` gives back the same numbers."""
    rows = np.column_stack(
        [
            np.asarray(positions, np.float64).reshape(-1, 3),
            np.asarray(weights, np.float64),
            np.asarray(wavelengths, np.float64),
        ]
    )
    if not np.all(np.isfinite(rows)):
        raise NBError("source file: positions, weights and wavelengths must be finite")
    return "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in rows)


def write_source_file(path: str | os.PathLike, directions, weights, wavelengths, distance: float = 10.0) -> None:
    """Write sources (unit vectors towards each source, weights, wavelengths in m) as a
    nanoBragg source file, placing each source ``distance`` metres from the sample."""
    from nbjax.io.atomic import write_bytes_atomic

    text = format_source_file(np.asarray(directions, np.float64) * distance, weights, wavelengths)
    write_bytes_atomic(path, text.encode("ascii"))
