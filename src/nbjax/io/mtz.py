"""Structure factors from an MTZ file (``-mtz FILE [-mtz_column LABEL]``), read with gemmi.

The column: ``-mtz_column LABEL``, else the first amplitude column (MTZ type F), else the first
intensity column (type J), else the first anomalous pair F(+)/F(-) (type G), else I(+)/I(-)
(type K).  Intensities become amplitudes F = sqrt(max(I, 0)) (a negative intensity gives F = 0,
with a warning that counts them).  Missing values (NaN in the file) are unlisted reflections,
which take ``-default_F`` as in the C program.

The reflections are expanded to P1 with the file's space group: every symmetry operation's
rotation R (gemmi's ``GroupOps.sym_ops``; centring translations do not move a reflection) maps h
to h R with the same amplitude, and every reflection gets its Friedel mate -h.  With an F or J
column there is no anomalous signal: F(-h) = F(h).  With an anomalous pair (named by either of
its labels, ``F(+)``/``F(-)``, or ``F+``/``F-``) F(+) at h gives F(h R) and F(-) at h gives
F(-h R): the Friedel mates keep their anomalous difference (nanoBragg looks F up by h, so it
renders it); where one of the pair is missing the other is used for both.  Two listed
reflections that land on the same P1 index with different amplitudes (an unmerged or
inconsistent file, or a centric F(+) != F(-)) are refused, as are unmerged (multi-record) files.

The result is the grid of ``-hkl`` files (``nbjax.io.hkl.HKLGrid``, built by
``hkl.grid_from_entries``), so ``-mtz`` renders exactly as an ``-hkl`` file listing the same P1
reflections.  gemmi is imported here only (``pip install 'nbjax[mtz]'``).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from nbjax.errors import NBError, os_error_text, quote_text, shown_path
from nbjax.io.hkl import HKLGrid, grid_from_entries

AMPLITUDE, INTENSITY, ANOMALOUS_AMPLITUDE, ANOMALOUS_INTENSITY = "F", "J", "G", "K"
KINDS = {
    AMPLITUDE: "amplitudes",
    INTENSITY: "intensities",
    ANOMALOUS_AMPLITUDE: "anomalous amplitudes",
    ANOMALOUS_INTENSITY: "anomalous intensities",
}
_PAIR_MARKS = (("(+)", "(-)"), ("+", "-"))  # F(+)/F(-), F+/F-


@dataclasses.dataclass(frozen=True)
class MTZReflections:
    """The reflections of one MTZ column expanded to P1: ``hkl`` (n, 3) int64, unique, and
    ``F`` (n,) float64 amplitudes; ``labels`` the column(s) read (two for an anomalous pair,
    F(+) first), ``kind`` (``KINDS``), ``spacegroup`` (Hermann-Mauguin), ``measured`` the file's
    reflections with a value, ``negative`` intensities below 0 (taken as F = 0)."""

    hkl: np.ndarray
    F: np.ndarray
    labels: tuple[str, ...]
    kind: str
    spacegroup: str
    measured: int
    negative: int


def _gemmi(purpose: str = "-mtz", extra: str = "mtz"):
    """The gemmi module, or a one-line error naming what needs it and the extra to install."""
    try:
        import gemmi
    except ImportError:
        raise NBError(f"{purpose} needs gemmi: pip install 'nbjax[{extra}]'") from None
    return gemmi


def _column_list(mtz) -> str:
    return " ".join(f"{quote_text(c.label)}:{c.type}" for c in mtz.columns)


def _partner(mtz, label: str, kind: str) -> tuple[str, str] | None:
    """(plus label, minus label) of the anomalous pair ``label`` belongs to, or None."""
    labels = {c.label for c in mtz.columns if c.type == kind}
    for plus, minus in _PAIR_MARKS:
        for mine, other, plus_first in ((plus, minus, True), (minus, plus, False)):
            if label.endswith(mine) and label[: -len(mine)] + other in labels:
                partner = label[: -len(mine)] + other
                return (label, partner) if plus_first else (partner, label)
    return None


def _choose(mtz, where: str, column: str | None) -> tuple[tuple[str, ...], str]:
    """(labels, MTZ type) of the column(s) to read (module docstring)."""
    if column is not None:
        col = next((c for c in mtz.columns if c.label == column), None)
        if col is None:
            raise NBError(f"-mtz_column: {where} has no column '{quote_text(column)}' (columns: {_column_list(mtz)})")
        if col.type in (AMPLITUDE, INTENSITY):
            return (col.label,), col.type
        if col.type in (ANOMALOUS_AMPLITUDE, ANOMALOUS_INTENSITY):
            pair = _partner(mtz, col.label, col.type)
            if pair is None:
                raise NBError(
                    f"-mtz_column: {where} column '{quote_text(column)}' (type {col.type}) has no (+)/(-) partner "
                    f"(columns: {_column_list(mtz)})"
                )
            return pair, col.type
        raise NBError(
            f"-mtz_column: {where} column '{quote_text(column)}' has type {col.type}; give an amplitude (F), "
            f"intensity (J) or anomalous F(+)/F(-) (G) or I(+)/I(-) (K) column (columns: {_column_list(mtz)})"
        )
    for kind in (AMPLITUDE, INTENSITY):
        col = next((c for c in mtz.columns if c.type == kind), None)
        if col is not None:
            return (col.label,), kind
    for kind in (ANOMALOUS_AMPLITUDE, ANOMALOUS_INTENSITY):
        for col in mtz.columns:
            pair = _partner(mtz, col.label, kind) if col.type == kind else None
            if pair is not None:
                return pair, kind
    raise NBError(
        f"{where} has no amplitude (F), intensity (J) or anomalous pair (G, K) column to take structure factors "
        f"from (columns: {_column_list(mtz)}); name one with -mtz_column"
    )


def _amplitudes(values: np.ndarray, kind: str) -> tuple[np.ndarray, int]:
    """(amplitudes, count of negative intensities) of a column's float64 values (NaN kept)."""
    if kind in (INTENSITY, ANOMALOUS_INTENSITY):
        with np.errstate(invalid="ignore"):
            negative = int(np.count_nonzero(values < 0))
            return np.sqrt(np.maximum(values, 0.0)), negative  # NaN stays NaN
    return values, 0


def expand_to_p1(hkl, F_plus, F_minus, rotations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (h R, F(+)) and (-h R, F(-)) for the integer rotation matrices ``rotations``
    (m, 3, 3) (row vector h times R, gemmi's ``Op.apply_to_hkl``): (hkl (k, 3) int64, F (k,),
    index of the source reflection (k,)).  Rows with a NaN F are left out; nothing is merged."""
    hkl = np.asarray(hkl, dtype=np.int64)
    n = hkl.shape[0]
    images = np.einsum("ni,mij->mnj", hkl, np.asarray(rotations, dtype=np.int64)).reshape(-1, 3)
    m = len(rotations)
    out_hkl = np.concatenate([images, -images])
    out_F = np.concatenate([np.tile(F_plus, m), np.tile(F_minus, m)])
    origin = np.tile(np.arange(n), 2 * m)
    keep = ~np.isnan(out_F)
    return out_hkl[keep], out_F[keep], origin[keep]


def _merge(where, hkl, F, origin, listed, spacegroup, value_name) -> tuple[np.ndarray, np.ndarray]:
    """Unique P1 reflections; NBError when two listed reflections give one index two values."""
    unique, first, inverse = np.unique(hkl, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    values = F[first]
    bad = np.nonzero(F != values[inverse])[0]
    if bad.size:
        k = int(bad[0])
        (a, Fa), (b, Fb) = sorted([(origin[j], F[j]) for j in (int(first[inverse[k]]), k)])  # in file order
        raise NBError(
            f"{where}: reflections {' '.join(map(str, listed[a]))} and {' '.join(map(str, listed[b]))} both give "
            f"{' '.join(map(str, hkl[k]))} in {spacegroup} (symmetry equivalents or Friedel mates) but with "
            f"{value_name} {Fa:g} and {Fb:g}; nbjax needs merged, unique reflections"
        )
    return unique, values


def read_mtz_reflections(path: str | os.PathLike, column: str | None = None) -> MTZReflections:
    """The P1 reflections of an MTZ file's column (module docstring)."""
    where = shown_path(path)
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise NBError(f"cannot read {where}: {os_error_text(exc, path)}") from None
    gemmi = _gemmi()
    try:
        mtz = gemmi.read_mtz_file(os.fsdecode(path))
    except (RuntimeError, ValueError, OSError) as exc:
        reason = " ".join(str(exc).replace(os.fsdecode(path), "").split()).rstrip(": ")
        raise NBError(f"{where}: not an MTZ file gemmi can read ({quote_text(reason, 80)})") from None
    if len(mtz.batches) > 0:
        raise NBError(f"{where} is unmerged ({len(mtz.batches)} batches); -mtz needs merged structure factors")
    if mtz.spacegroup is None:
        raise NBError(f"{where} names no space group that gemmi knows ({quote_text(mtz.spacegroup_name)})")
    labels, kind = _choose(mtz, where, column)
    listed = np.rint(np.asarray(mtz.make_miller_array(), dtype=np.float64)).astype(np.int64).reshape(-1, 3)
    raw = [np.asarray(mtz.column_with_label(label).array, dtype=np.float64) for label in labels]
    amplitudes = [_amplitudes(values, kind) for values in raw]
    negative = sum(count for _, count in amplitudes)
    plus = amplitudes[0][0]
    minus = amplitudes[-1][0]
    if len(labels) == 2:  # one of the pair missing: the other serves both
        plus, minus = np.where(np.isnan(plus), minus, plus), np.where(np.isnan(minus), plus, minus)
    measured = int(np.count_nonzero(~(np.isnan(plus) & np.isnan(minus))))
    rotations = np.array([np.array(op.rot) // op.DEN for op in mtz.spacegroup.operations().sym_ops])
    hkl, F, origin = expand_to_p1(listed, plus, minus, rotations)
    if not len(F):
        raise NBError(f"{where}: column {'/'.join(labels)} has no values")
    value_name = "F" if kind in (AMPLITUDE, ANOMALOUS_AMPLITUDE) else "sqrt(I)"
    hkl, F = _merge(where, hkl, F, origin, listed, mtz.spacegroup.hm, value_name)
    return MTZReflections(hkl, F, labels, KINDS[kind], mtz.spacegroup.hm, measured, negative)


def reflections_grid(refl: MTZReflections, default_F: float, where: str) -> HKLGrid:
    """The structure-factor grid of P1 reflections (``hkl.grid_from_entries``): ``hkls`` is the
    number of P1 reflections; ``warnings`` says how many negative intensities became F = 0."""
    warnings = ()
    if refl.negative:
        warnings = (
            f"{where}: {refl.negative} negative intensities in column {'/'.join(refl.labels)} taken as F = 0 "
            "(F = sqrt(max(I, 0)))",
        )
    return grid_from_entries(refl.hkl, refl.F, default_F, where, warnings)


def read_mtz(path: str | os.PathLike, default_F: float = 0.0, column: str | None = None) -> HKLGrid:
    """The structure-factor grid of an MTZ file's column expanded to P1 (module docstring):
    the grid an ``-hkl`` file listing the same P1 reflections gives."""
    return reflections_grid(read_mtz_reflections(path, column), default_F, shown_path(path))
