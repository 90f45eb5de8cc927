"""The unique reflections of a data set and the P1 structure-factor grid they fill.

The structure factors refined over many shots are those of the asymmetric unit of the space
group (gemmi's ``make_miller_array(..., unique=True)``: one reflection per set of symmetry
mates, systematic absences left out), to ``dmin``.  With Friedel mates tied, F(-h) = F(h) and
one value serves every symmetry mate of h and of -h; with ``anomalous=True`` the mates of h
and of -h are two values, F(+) and F(-), except for centric reflections (-h is a symmetry mate
of h, so F(-) = F(+) whatever the anomalous signal): all their indices take F(+), and their
F(-) number is never seen.

The render kernel reads F from a P1 grid (``nbjax.experiment.StructureFactors``).  ``index``
is that grid of reflection numbers: entry (h, k, l) holds j, the value F_j it takes, or -1;
``grid(F)`` is then one gather, so a new F costs no host work and no recompilation.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from nbjax.errors import NBError
from nbjax.experiment import StructureFactors


@dataclasses.dataclass(frozen=True, eq=False)
class Reflections:
    """Unique reflections (``hkl`` (n, 3), with ``plus`` (n,) True for F(+), False for F(-)
    when anomalous) of ``space_group`` (gemmi's xhm name) in ``cell`` (a, b, c in A, angles in
    degrees) to ``dmin`` (A), and the P1 grid of their numbers over [lo, hi] (``index``,
    padded by one in every axis as the kernel's grids are)."""

    space_group: str
    cell: tuple
    dmin: float
    anomalous: bool
    hkl: np.ndarray
    plus: np.ndarray
    lo: tuple
    hi: tuple
    index: np.ndarray

    @property
    def count(self) -> int:
        return int(self.hkl.shape[0])

    def grid(self, F) -> StructureFactors:
        """The structure factors F (n,) of the reflections as the kernel's P1 grid (0 off the
        list)."""
        F = jnp.asarray(F)
        index = jnp.asarray(self.index)
        values = jnp.where(index >= 0, F[jnp.maximum(index, 0)], 0.0)
        return StructureFactors(
            default_F=jnp.zeros((), F.dtype), grid=values, lo=self.lo, hi=self.hi, interpolate=False
        )

    def labels(self) -> list[str]:
        """'h k l' (with '(+)'/'(-)' when anomalous) of every reflection."""
        out = [" ".join(str(int(x)) for x in h) for h in self.hkl]
        if self.anomalous:
            out = [f"{t}({'+' if p else '-'})" for t, p in zip(out, self.plus, strict=True)]
        return out


def unique_reflections(space_group: str, cell, dmin: float, anomalous: bool = False) -> Reflections:
    """The reflections of the asymmetric unit to ``dmin`` (module docstring)."""
    from nbjax.io.hkl import grid_from_entries
    from nbjax.io.mtz import _gemmi, expand_to_p1

    gemmi = _gemmi("nbjax ensemble", "ensemble")
    try:
        sg = gemmi.SpaceGroup(space_group)
    except (ValueError, RuntimeError):
        raise NBError(f"unknown space group '{space_group}'") from None
    if not dmin > 0:
        raise NBError(f"dmin must be positive, got {dmin:g} A")
    cell = tuple(float(x) for x in cell)
    asu = np.asarray(gemmi.make_miller_array(gemmi.UnitCell(*cell), sg, float(dmin), 0.0, True), np.int64)
    asu = asu.reshape(-1, 3)
    if not len(asu):
        raise NBError(f"no reflection of {sg.xhm()} in cell {cell} reaches d = {dmin:g} A")
    n = len(asu)
    rotations = np.array([np.array(op.rot) // op.DEN for op in sg.operations().sym_ops])
    number = np.arange(n, dtype=np.float64)
    minus = number + n if anomalous else number
    hkl_p1, code, _ = expand_to_p1(asu, number + 1.0, minus + 1.0, rotations)  # codes j + 1: 0 is "none"
    order = np.argsort(code <= n, kind="stable")  # F(-) entries first: where an index is both (centric), F(+) wins
    grid = grid_from_entries(hkl_p1[order], code[order], 0.0, "the unique reflections")
    index = np.rint(grid.F).astype(np.int64) - 1
    hkl = np.concatenate([asu, -asu]) if anomalous else asu
    plus = np.concatenate([np.ones(n, bool), np.zeros(n, bool)]) if anomalous else np.ones(n, bool)
    lo = (grid.h_min, grid.k_min, grid.l_min)
    hi = (grid.h_max, grid.k_max, grid.l_max)
    return Reflections(sg.xhm(), cell, float(dmin), bool(anomalous), hkl, plus, lo, hi, index.astype(np.int32))


def numbers_of(reflections: Reflections, hkl) -> np.ndarray:
    """The reflection number of every Miller index (m, 3) (any symmetry mate; with anomalous
    reflections the mate's sign decides F(+) or F(-)), -1 for an index off the list."""
    hkl = np.asarray(hkl, np.int64).reshape(-1, 3)
    lo, hi = np.asarray(reflections.lo), np.asarray(reflections.hi)
    inside = np.all((hkl >= lo) & (hkl <= hi), axis=1)
    i = np.where(inside[:, None], hkl - lo, 0)
    return np.where(inside, reflections.index[i[:, 0], i[:, 1], i[:, 2]], -1).astype(np.int64)


def space_group_of(crystal) -> str:
    """The space group (gemmi's xhm name) of a DIALS crystal's Hall symbol."""
    import gemmi

    try:
        return gemmi.find_spacegroup_by_ops(gemmi.symops_from_hall(crystal.hall_symbol.strip())).xhm()
    except (ValueError, RuntimeError, AttributeError):
        raise NBError(f"the crystal's Hall symbol '{crystal.hall_symbol}' names no space group gemmi knows") from None


def cell_of(crystal) -> tuple:
    """(a, b, c in A, alpha, beta, gamma in degrees) of a DIALS crystal's real-space vectors."""
    a, b, c = (np.asarray(v, np.float64) for v in crystal.real_space)

    def angle(u, v):
        return float(np.degrees(np.arccos(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))))

    return (*(float(np.linalg.norm(v)) for v in (a, b, c)), angle(b, c), angle(c, a), angle(a, b))


def corner_dmin(experiment) -> float:
    """The resolution (A) at the detector's farthest pixel corner from the beam: d = lambda /
    (2 sin theta), over every panel's four corners."""
    beam = experiment.beam
    s0 = np.asarray(beam.propagation, np.float64)
    s0 = s0 / np.linalg.norm(s0)
    best = 0.0
    for p in experiment.panels:
        f = np.asarray(p.fast) * p.pixel_size[0] * p.image_size[0]
        s = np.asarray(p.slow) * p.pixel_size[1] * p.image_size[1]
        for corner in (p.origin, p.origin + f, p.origin + s, p.origin + f + s):
            v = np.asarray(corner, np.float64)
            cos2t = float(np.dot(v, s0) / np.linalg.norm(v))
            best = max(best, np.arccos(np.clip(cos2t, -1.0, 1.0)))
    if best <= 0:
        raise NBError("the detector sees no scattering angle: cannot choose dmin (give -dmin)")
    return float(beam.wavelength / (2.0 * np.sin(best / 2.0)))
