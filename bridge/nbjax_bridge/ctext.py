"""How the reference C program reads its text inputs (simulated, for the linter).

- Source files go through ``read_text_file``: ``fgets`` line by line, leading delimiters
  (space, tab, ``, ; : !``) skipped, a line that is then exactly ``"\\n"`` is blank. Each token is
  ``atof``'d (non-numbers give 0). After a token the reader expects exactly ``"\\n"``; a line that
  ends any other way (CRLF, end of file without newline, a trailing non-numeric token) keeps
  going and fills the missing columns with 0 instead of leaving them NaN (= default).
- HKL files are read with ``fscanf("%lg%lg%lg%lg")`` until a read fails: not line by line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from nbjax.io.cformat import c_atof  # noqa: F401  (the bridge's C atof is nbjax's)
from nbjax.io.sourcefile import DELIMITERS, c_source_values


def fgets_lines(text: str) -> list[str]:
    """Lines as ``fgets`` returns them (newline kept; a final fragment without one included)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


@dataclass
class SourceLine:
    lineno: int  # 1-based line in the file
    raw: str  # the line as fgets returned it
    values: list[float]  # what C stores (NaN = missing, later replaced by a default)
    tokens: list[str]  # the tokens a person sees (split on C's delimiters, CR/LF stripped)

    @property
    def crlf(self) -> bool:
        return self.raw.endswith("\r\n")

    @property
    def no_newline(self) -> bool:
        return not self.raw.endswith("\n")

    @property
    def nonnumeric(self) -> list[str]:
        out = []
        for t in self.tokens:
            try:
                float(t)
            except ValueError:
                out.append(t)
        return out


def parse_source_line(raw: str, nargs: int = 5) -> list[float] | None:
    """Values C's read_text_file stores for one line (None for a blank line)."""
    if raw.lstrip(DELIMITERS) == "\n":
        return None
    return c_source_values(raw, nargs)


def read_source_file(text: str, nargs: int = 5) -> list[SourceLine]:
    out = []
    for n, raw in enumerate(fgets_lines(text), start=1):
        vals = parse_source_line(raw, nargs)
        if vals is None:
            continue
        body = raw.rstrip("\r\n")
        tokens = [t for t in re.split(r"[ \t,;:!]+", body) if t]
        out.append(SourceLine(n, raw, vals, tokens))
    return out


@dataclass
class HklScan:
    entries: int  # complete "h k l F" quadruples fscanf reads
    stop_line: int | None  # 1-based line of the token where reading stopped (None = EOF)
    stop_token: str | None
    trailing_numbers: int  # numbers left over after the last full quadruple
    columns: dict[int, int]  # column count -> number of lines with it
    first_bad_columns: int | None  # first line whose column count is not 4
    noninteger_line: int | None  # first line with a non-integer h, k or l


def scan_hkl(text: str) -> HklScan:
    entries, count, stop_line, stop_token = 0, 0, None, None
    columns: dict[int, int] = {}
    first_bad = None
    nonint = None
    stopped = False
    for n, line in enumerate(text.splitlines(), start=1):
        toks = line.split()
        if not toks:
            continue
        numeric = True
        for t in toks:
            try:
                float(t)
            except ValueError:
                numeric = False
                if not stopped:
                    stopped, stop_line, stop_token = True, n, t
                break
            if not stopped:
                count += 1
        if numeric:
            columns[len(toks)] = columns.get(len(toks), 0) + 1
            if len(toks) != 4 and first_bad is None:
                first_bad = n
            if nonint is None and len(toks) >= 3:
                hkl = [float(t) for t in toks[:3]]
                if any(v != math.floor(v) for v in hkl):
                    nonint = n
    entries = count // 4
    return HklScan(entries, stop_line, stop_token, count % 4, columns, first_bad, nonint)
