"""Case lists in the tests/data/c_golden/cases.toml format, and staging their fixtures.

A case has ``id`` and ``args``; optionally ``files`` (name -> text written into the run folder),
``grid_hkl`` ({name, range, seed}: a generated HKL table), ``smv_inputs`` (small SMV images; not
generated here: copied from the case folder when it holds them, otherwise the case is skipped),
``threshold`` / ``sum_tol`` overriding the defaults, ``note`` and ``keep``.
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .exitcodes import InputIOError, UsageError


@dataclass
class Case:
    id: str
    args: list[str]
    files: dict[str, str] = field(default_factory=dict)
    grid_hkl: dict | None = None
    smv_inputs: dict = field(default_factory=dict)
    threshold: float | None = None
    sum_tol: float | None = None
    note: str = ""


def load_cases(path: Path) -> list[Case]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise InputIOError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from None
    raw = data.get("case")
    if not isinstance(raw, list):
        raise UsageError(f"{path} has no [[case]] entries")
    out, seen = [], set()
    for k, c in enumerate(raw, start=1):
        cid = c.get("id")
        args = c.get("args")
        if not isinstance(cid, str) or not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise UsageError(f"{path}: case #{k} needs a string id and a list of string args")
        if cid in seen:
            raise UsageError(f"{path}: duplicate case id {cid}")
        seen.add(cid)
        out.append(
            Case(
                cid,
                list(args),
                dict(c.get("files") or {}),
                c.get("grid_hkl"),
                dict(c.get("smv_inputs") or {}),
                c.get("threshold"),
                c.get("sum_tol"),
                c.get("note", ""),
            )
        )
    return out


def select(cases: list[Case], only: list[str] | None) -> list[Case]:
    if not only:
        return cases
    ids = {c.id for c in cases}
    missing = [o for o in only if o not in ids]
    if missing:
        raise UsageError(f"unknown case id(s): {', '.join(missing)}")
    return [c for c in cases if c.id in set(only)]


def grid_hkl_text(rng_range: int, seed: int) -> str:
    """Every h, k, l in [-range, range] (h, then k, then l), F ~ U[50, 150) from default_rng(seed)."""
    r = int(rng_range)
    idx = np.arange(-r, r + 1)
    rng = np.random.default_rng(seed)
    f = rng.uniform(50.0, 150.0, size=idx.size**3)
    lines, n = [], 0
    for h in idx:
        for k in idx:
            for l in idx:
                lines.append(f"{h} {k} {l} {f[n]:.3f}\n")
                n += 1
    return "".join(lines)


class Skip(Exception):
    """The case cannot be run here (reason in the message)."""


def stage_fixtures(case: Case, dest: Path, case_dir: Path | None, prefer_stored: bool = False) -> list[str]:
    """Write the case's fixture files into dest; returns their names. Raises Skip.

    ``files`` are written from the case text and ``grid_hkl`` is generated, unless prefer_stored
    (replay) and case_dir holds a file of that name. ``smv_inputs`` must exist in case_dir.
    """
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for name, text in case.files.items():
        src = case_dir / name if case_dir and prefer_stored else None
        if src is not None and src.is_file():
            shutil.copyfile(src, dest / name)
        else:
            (dest / name).write_text(text)
        names.append(name)
    if case.grid_hkl:
        name = case.grid_hkl.get("name", "grid.hkl")
        src = case_dir / name if case_dir and prefer_stored else None
        if src is not None and src.is_file():
            shutil.copyfile(src, dest / name)
        else:
            (dest / name).write_text(grid_hkl_text(case.grid_hkl["range"], case.grid_hkl["seed"]))
        names.append(name)
    for name in case.smv_inputs:
        src = case_dir / name if case_dir else None
        if src is None or not src.is_file():
            raise Skip("skipped: smv_inputs not generated")
        shutil.copyfile(src, dest / name)
        names.append(name)
    return names
