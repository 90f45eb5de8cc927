"""MOSFLM orientation matrix files (``-mat``).

The first nine white-space separated numbers are the A matrix, three rows ``a*x b*x c*x`` /
``a*y b*y c*y`` / ``a*z b*z c*z`` (reciprocal cell vectors in 1/Angstrom, multiplied by the
wavelength as MOSFLM writes them; the caller rescales by 1e-10/lambda0).  The rest of the file
(U matrix, cell, missets) is ignored, as in C's three ``fscanf("%lg%lg%lg")`` calls.
"""

import math
import os

import numpy as np

from nbjax.errors import NBError, os_error_text, shown_path
from nbjax.io.cformat import parse_c_float


def read_mat(path: str | os.PathLike) -> np.ndarray:
    """The 3x3 float64 A matrix, rows as in the file, so columns are a*, b*, c*."""
    try:
        with open(path, "rb") as handle:
            tokens = handle.read().split()[:9]
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    values = []
    for tok in tokens:
        value = parse_c_float(tok.decode("latin-1"))
        if value is None:
            break
        if not math.isfinite(value):
            raise NBError(f"{path}: matrix element '{tok.decode('latin-1')}' is not a finite number")
        values.append(value)
    if len(values) < 9:
        raise NBError(f"{path}: expected 9 numbers (3 rows of a* b* c* components), found {len(values)}")
    mat = np.array(values, dtype=np.float64).reshape(3, 3)
    with np.errstate(all="ignore"):
        det = float(np.linalg.det(mat))
    if det == 0.0 or not math.isfinite(1.0 / det):
        raise NBError(
            f"{path}: the A matrix is singular (determinant {det:g}): its columns a*, b*, c* span no unit cell "
            "(nanoBragg would render a NaN image)"
        )
    return mat
