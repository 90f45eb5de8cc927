"""Structure-factor text files (``-hkl``): one ``h k l F`` entry per line.

The grid layout is the C program's: F[h-h_min, k-k_min, l-l_min] with shape
(h_range+1, k_range+1, l_range+1), h_range = h_max-h_min+1, i.e. one extra zero slab per axis.
The C reader uses ``fscanf`` four numbers at a time, not line by line; this reader is line-based
and agrees with it on well-formed files.  Where C misreads a file it is an NBError here (comments,
non-numeric or short lines, non-finite numbers) or a returned warning (extra columns: the first
four are used; indices not written as plain integers: C stops reading at the first one).

Exit status of a refused file: 9 exactly where the C program exits 9 on it, 2 otherwise (checked
against the C program).  C exits 9 when it cannot open the file, and ("not enough HKL indices")
when its counting pass leaves an index range negative: no entry read at all (an empty file, a
leading comment or text line, fewer than four numbers before the first non-number), a NaN index
in every entry of one column, or an index beyond a C int whose conversion (INT_MIN on x86-64)
makes max - min + 1 negative.  ``c_counting_pass_fails`` repeats that pass; it runs only for a
file nbjax refuses, and never makes one acceptable.  Files C reads (a comment after the first
entry, a NaN F) or allocates until it is killed (a grid over ``MAX_GRID_CELLS``) exit 2.

Speed: a well-formed file (plain-integer indices, four finite numbers on every non-blank line,
only digits, signs, points, exponents and white space) is parsed in one call of NumPy's C text
reader; anything else goes through the line-by-line validator, which gives the messages and
warnings above, so both paths accept, reject and warn alike.
"""

import io
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from nbjax.errors import NBError, os_error_text, quote_text, shown_path
from nbjax.io.cformat import cformat_g, parse_c_float

_PLAIN_INT = re.compile(r"[+-]?\d+\Z")
# one fscanf("%lg") conversion: white space, then the longest number strtod reads (hex included)
_C_NUMBER = re.compile(
    r"[ \t\n\v\f\r]*([+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?"
    r"|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?))",
    re.IGNORECASE,
)
C_EXIT = 9  # the C program's exit status for an HKL file it cannot use
MAX_GRID_CELLS = 1 << 28
_ROW = np.dtype([("h", "<i8"), ("k", "<i8"), ("l", "<i8"), ("F", "<f8")])
_FAST_BYTES = b"0123456789+-.eE \t\n\r"


@dataclass(frozen=True, eq=False)
class HKLGrid:
    """Structure factors on the C grid (see module docstring); ``hkls`` is C's entry count (lines
    read from an HKL file, h_range*k_range*l_range for an Fdump); ``warnings`` are lines to print."""

    h_min: int
    h_max: int
    k_min: int
    k_max: int
    l_min: int
    l_max: int
    F: np.ndarray
    hkls: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def ranges(self) -> tuple[int, int, int]:
        """(h_range, k_range, l_range) = max - min + 1 per axis."""
        return self.h_max - self.h_min + 1, self.k_max - self.k_min + 1, self.l_max - self.l_min + 1


def empty_grid(bounds: tuple[int, int, int, int, int, int], where: str) -> np.ndarray:
    """Zero F array of shape (h_range+1, k_range+1, l_range+1) for (h_min,h_max,k_min,...)."""
    h_min, h_max, k_min, k_max, l_min, l_max = bounds
    shape = (h_max - h_min + 2, k_max - k_min + 2, l_max - l_min + 2)
    if min(shape) < 2:
        raise NBError(f"not enough HKL indices in {where}", C_EXIT)
    if shape[0] * shape[1] * shape[2] > MAX_GRID_CELLS:
        raise NBError(f"{where}: HKL index ranges {bounds} are too large")
    return np.zeros(shape, dtype=np.float64)


def _entries(path, data: bytes) -> tuple[list[tuple[float, float, float, float]], list[str]]:
    entries, warnings, wide_lines = [], [], []
    stop_noted = False
    for number, line in enumerate(data.split(b"\n"), start=1):
        tokens = [tok.decode("latin-1") for tok in line.split()]
        if not tokens:
            continue
        values = [parse_c_float(tok) for tok in tokens]
        for tok, value in zip(tokens, values, strict=True):
            if value is None:
                raise NBError(f"{path} line {number}: '{quote_text(tok)}' is not a number")
            if not math.isfinite(value):
                raise NBError(f"{path} line {number}: '{quote_text(tok)}' is not a finite number")
        if len(tokens) < 4:
            raise NBError(f"{path} line {number}: expected h k l F, found {len(tokens)} column(s)")
        if len(tokens) > 4:
            wide_lines.append(number)
        h, k, l, F = values[:4]
        for name, value in zip("hkl", (h, k, l), strict=True):
            if abs(value) >= 2**31:
                raise NBError(f"{path} line {number}: {name} = {cformat_g(value)} does not fit a C int")
            if value != math.ceil(value - 0.4):
                warnings.append(f"WARNING: non-integer value for {name} ({cformat_g(value)}) at line {len(entries)}")
        if not stop_noted and not all(_PLAIN_INT.match(tok) for tok in tokens[:3]):
            stop_noted = True
            warnings.append(
                f"WARNING: {path} line {number}: index not written as a plain integer; "
                "the C program stops reading the file here"
            )
        entries.append((h, k, l, F))
    if wide_lines:
        warnings.append(
            f"WARNING: {path}: {len(wide_lines)} line(s) have more than 4 columns "
            f"(first: line {wide_lines[0]}); h k l F taken from the first four "
            "(the C program mis-parses such files)"
        )
    return entries, warnings


def _fast_entries(data: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """(int64 (n, 3) indices, float64 F) of a well-formed file (module docstring), else None.
    The caller checks that the indices fit a C int."""
    if not data or data.isspace() or data.translate(None, _FAST_BYTES):
        return None
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):  # a lone CR is no line break in C
        return None
    try:
        rows = np.loadtxt(io.BytesIO(data), dtype=_ROW, comments=None, ndmin=1)
    except ValueError:  # a short, long or non-numeric line: the validator says which
        return None
    if rows.size == 0:
        return None
    idx = rows.view("<i8").reshape(-1, 4)[:, :3]  # h, k, l columns, no copy
    F = rows["F"]
    if not np.isfinite(F).all():
        return None
    return idx, F


def _slow_entries(path, data: bytes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    entries, warnings = _entries(path, data)
    if not entries:
        raise NBError(f"not enough HKL indices in {path}", C_EXIT)
    idx = np.array([[int(h), int(k), int(l)] for h, k, l, _ in entries], dtype=np.int64)
    return idx, np.array([entry[3] for entry in entries], dtype=np.float64), warnings


def _c_number(token: str) -> float:
    token = token.split("(")[0]
    return float.fromhex(token) if "x" in token.lower() else float(token)


def _c_int(x: float) -> int:
    """C's ``(int)`` of a double as gcc does it on x86-64: truncation toward zero, and INT_MIN
    for NaN and values out of range."""
    return int(x) if -(2.0**31) - 1.0 < x < 2.0**31 else -(2**31)


def _c_int32(n: int) -> int:
    """``n`` wrapped to a C int (two's complement, as the int arithmetic of C runs on x86-64)."""
    return (n + 2**31) % 2**32 - 2**31


def c_counting_pass_fails(data: bytes) -> bool:
    """True when the C program's first pass over an HKL file (``fscanf("%lg%lg%lg%lg")`` until
    it reads fewer than four numbers, keeping int min/max per index column, starting from 1e9
    and -1e9) leaves a negative range max - min + 1, on which C prints "not enough HKL indices"
    and exits 9 (module docstring)."""
    text = data.decode("latin-1")
    lo, hi = [10**9] * 3, [-(10**9)] * 3
    pos = 0
    while True:
        values = []
        while len(values) < 4:
            match = _C_NUMBER.match(text, pos)
            if match is None:
                break
            values.append(_c_number(match.group(1)))
            pos = match.end()
        if len(values) < 4:
            break
        for i, v in enumerate(values[:3]):
            if lo[i] > v:  # False for NaN, as in C
                lo[i] = _c_int(v)
            if hi[i] < v:
                hi[i] = _c_int(v)
    return any(_c_int32(h - l + 1) < 0 for l, h in zip(lo, hi, strict=True))


def _column_bounds(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column minimum and maximum of an (n, 3) index array (one column at a time: faster
    than an axis reduction over a strided view)."""
    columns = [idx[:, i] for i in range(3)]
    return np.array([c.min() for c in columns]), np.array([c.max() for c in columns])


def read_hkl(path: str | os.PathLike, default_F: float = 0.0) -> HKLGrid:
    """Read an ``h k l F`` file into the C grid.

    Ranges are C's int truncations of the min/max indices; the real extent is prefilled with
    ``default_F`` when it is non-zero; entries are placed at their truncated indices in file order,
    so later duplicates win.  Returns the grid, C's ``hkls`` count and any warning lines.
    A refused file is an NBError with exit status 9 where C exits 9 on it, else 2.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise NBError(f"unable to open {shown_path(path)}: {os_error_text(exc, path)}", C_EXIT) from None
    try:
        return _grid(path, data, default_F)
    except NBError as exc:
        if exc.exit_code == C_EXIT or not c_counting_pass_fails(data):
            raise
        raise NBError(str(exc), C_EXIT) from None


def _grid(path, data: bytes, default_F: float) -> HKLGrid:
    fast = _fast_entries(data)
    if fast is not None:
        idx, values = fast
        lo, hi = _column_bounds(idx)
    if fast is None or lo.min() <= -(2**31) or hi.max() >= 2**31:  # the validator's errors
        idx, values, warnings = _slow_entries(path, data)
        lo, hi = _column_bounds(idx)
    else:
        warnings = []
    return grid_from_entries(idx, values, default_F, str(path), warnings, bounds=(lo, hi))


def grid_from_entries(
    idx: np.ndarray, values: np.ndarray, default_F: float, where: str, warnings=(), bounds=None
) -> HKLGrid:
    """The C grid of entries ``idx`` (int64 (n, 3) h k l) with amplitudes ``values`` (n,), as
    ``read_hkl`` builds it: ranges from the smallest and largest index per axis, the real extent
    prefilled with ``default_F`` when it is non-zero (unlisted reflections take default_F, as in
    C), later duplicates win; ``hkls`` is the number of entries.  ``bounds``: the per-axis
    (minima, maxima) when the caller has them.  The one grid builder of every F reader."""
    idx = np.asarray(idx, dtype=np.int64).reshape(-1, 3)
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if not len(values):
        raise NBError(f"not enough HKL indices in {where}", C_EXIT)
    lo, hi = _column_bounds(idx) if bounds is None else bounds
    bounds = (int(lo[0]), int(hi[0]), int(lo[1]), int(hi[1]), int(lo[2]), int(hi[2]))
    F = empty_grid(bounds, where)
    if default_F != 0.0:
        F[:-1, :-1, :-1] = default_F
    flat = (idx[:, 0] - lo[0]) * (F.shape[1] * F.shape[2]) + (idx[:, 1] - lo[1]) * F.shape[2] + (idx[:, 2] - lo[2])
    seen = np.zeros(F.size, dtype=bool)
    seen[flat] = True
    if np.count_nonzero(seen) == len(flat):  # no repeated index: one plain scatter
        F.flat[flat] = values
    else:  # later duplicates win, as in C
        last = len(flat) - 1 - np.unique(flat[::-1], return_index=True)[1]
        F.flat[flat[last]] = values[last]
    return HKLGrid(*bounds, F=F, hkls=len(values), warnings=tuple(warnings))
