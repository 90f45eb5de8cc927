"""C-style conversion of argv tokens to numbers, with nbjax's stricter checks.

The C program uses ``atof``/``atoi``, which silently read a number prefix and give 0 for
anything else.  nbjax keeps that behaviour for tokens that look like flags (a handler that
fires through a substring collision reads the next flag as its value, and C reads 0 there),
and rejects garbage, NaN and infinity in a value the user typed, with a one-line error.
"""

import math

from nbjax.errors import NBError
from nbjax.io.cformat import C_FLOAT_TOKEN, c_atof, c_atoi


def _looks_like_flag(token: str) -> bool:
    return token.startswith("-") and not C_FLOAT_TOKEN.match(token)


def to_float(token: str, flag: str) -> float:
    """Value of ``flag``: a finite number, or C's atof of a flag-like token."""
    if _looks_like_flag(token):
        return c_atof(token)
    try:
        value = float(token)
    except ValueError:
        raise NBError(f"{flag}: value '{token}' is not a number") from None
    if not math.isfinite(value):
        raise NBError(f"{flag}: value '{token}' is not finite")
    return value


def to_int(token: str, flag: str) -> int:
    """Value of ``flag`` as C's atoi reads it (a decimal value is truncated, as in C)."""
    if _looks_like_flag(token):
        return c_atoi(token)
    return int(to_float(token, flag))
