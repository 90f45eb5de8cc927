"""Run nbjax on a golden C case (tests/data/c_golden) and compare float images."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tomllib
from pathlib import Path

import numpy as np

from nbjax_bridge.metrics import pearson

GOLDEN = Path(__file__).parent / "data" / "c_golden"
EXTRA = Path(__file__).parent / "data" / "c_extra"  # more C runs, same layout
FIXTURE_SUFFIXES = (".txt", ".hkl", ".mat", ".img")
KEPT_OUTPUTS = ("c_stdout.txt", "c_int.img", "c_noise.img", "c_img.pgm")


def load_cases() -> list[dict]:
    """Cases of the shared golden set and of c_extra, each with its folder under "dir"."""
    cases = []
    for root in (GOLDEN, EXTRA):
        with open(root / "cases.toml", "rb") as fh:
            cases += [dict(c, dir=root / c["id"]) for c in tomllib.load(fh)["case"]]
    return cases


def prepare(case: dict, folder: Path) -> None:
    """Lay out the case's fixture files in ``folder`` as the reference run had them."""
    for name, text in case.get("files", {}).items():
        (folder / name).write_text(text)
    for f in case["dir"].iterdir():
        if f.suffix in FIXTURE_SUFFIXES and f.name not in KEPT_OUTPUTS and not (folder / f.name).exists():
            shutil.copy(f, folder / f.name)


def run_nbjax(case: dict, folder: Path, extra=()) -> tuple[np.ndarray, str, str]:
    """Run the CLI in-process in ``folder``; returns (float image, stdout, stderr)."""
    from nbjax.cli.main import run

    prepare(case, folder)
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out):
            code = run(list(case["args"]) + ["-floatfile", "py_float.bin", *extra], out=out, err=err)
    finally:
        os.chdir(old)
    assert code == 0, err.getvalue()
    return np.fromfile(folder / "py_float.bin", dtype="<f4"), out.getvalue(), err.getvalue()


def c_image(case: dict) -> np.ndarray:
    return np.fromfile(case["dir"] / "c_float.bin", dtype="<f4")


def metrics(c: np.ndarray, py: np.ndarray) -> dict:
    c64, p64 = c.astype(np.float64), py.astype(np.float64)
    return {
        "corr": pearson(c64, p64),
        "sum_ratio": float(p64.sum() / c64.sum()) if c64.sum() else float("nan"),
        "max_rel": float(np.max(np.abs(p64 - c64)) / max(np.max(np.abs(c64)), 1e-300)),
    }
