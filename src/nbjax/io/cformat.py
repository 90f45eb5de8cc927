"""C-compatible number formatting and parsing: the one home of nbjax's C number helpers (file
formats, the CLI's argv values, the bridge).

``cformat_g`` spells a double the way glibc's ``printf("%g")`` does (Python's ``%g`` agrees for
every finite value and for infinities; only NaN differs: C prints ``-nan`` when the sign bit is set).
``c_atof`` reads the longest numeric prefix like C's ``atof``/``strtod`` (0.0 when there is none),
``c_atoi`` the leading integer like C's ``atoi``.
``C_FLOAT_TOKEN`` matches one whole decimal number as ``fscanf("%lg")`` would accept it, excluding
hexadecimal forms.  ``c_unsigned_cast`` is C's ``(unsigned char)``/``(unsigned short)`` of a double.
"""

import math
import re

import numpy as np

from nbjax.ctables.constants import RTD  # noqa: F401  (re-exported: C's degrees per radian)

_NUMBER = r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)"
_ATOF_PREFIX = re.compile(r"[ \t\n\v\f\r]*(" + _NUMBER + ")", re.IGNORECASE)
C_FLOAT_TOKEN = re.compile(_NUMBER + r"\Z", re.IGNORECASE)
_ATOI_PREFIX = re.compile(r"[ \t\n\v\f\r]*[+-]?\d+")


def cformat_g(x: float, precision: int = 6) -> str:
    """Format ``x`` exactly as C's ``printf("%.<precision>g", x)`` (``%g`` and ``%lg`` by default)."""
    if math.isnan(x):
        return "-nan" if math.copysign(1.0, x) < 0 else "nan"
    return "%.*g" % (precision, x)  # noqa: UP031 (C's printf, spelled as C spells it)


def c_atof(text: str) -> float:
    """C ``atof``: skip leading white space, convert the longest numeric prefix, 0.0 if none."""
    match = _ATOF_PREFIX.match(text)
    if match is None:
        return 0.0
    return float(match.group(1).split("(")[0])


def c_atoi(text: str) -> int:
    """C ``atoi``: skip leading white space, convert the leading decimal integer, 0 if none."""
    match = _ATOI_PREFIX.match(text)
    return int(match.group(0)) if match else 0


def parse_c_float(token: str) -> float | None:
    """The value of ``token`` if the whole token is one C decimal number, else None."""
    if C_FLOAT_TOKEN.match(token) is None:
        return None
    return float(token.split("(")[0])


def c_unsigned_cast(values, bits: int) -> np.ndarray:
    """C ``(unsigned char)`` (bits=8) or ``(unsigned short)`` (bits=16) of doubles, as gcc does it on
    x86-64: truncate toward zero to int32 (NaN and out-of-range values give 0x80000000), then keep
    the low ``bits`` bits, so -60.0 becomes 65476 and NaN becomes 0."""
    x = np.asarray(values, dtype=np.float64)
    in_range = (x > -(2.0**31)) & (x < 2.0**31)
    truncated = np.trunc(np.where(in_range, x, 0.0)).astype(np.int64)
    return (truncated & ((1 << bits) - 1)).astype(np.uint8 if bits == 8 else np.uint16)
