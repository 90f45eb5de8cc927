"""The library face: no files written, C quirks surfaced as Python warnings, no global JAX
settings changed (see also tests/test_tables.py for the import checks)."""

import os
import warnings

import pytest

import nbjax

HKL = "".join(
    f"{h} {k} {l} {100 + h + 2 * k + 3 * l}\n" for h in range(-2, 3) for k in range(-2, 3) for l in range(-2, 3)
)


def test_experiment_from_args_writes_nothing_and_warns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p1.hkl").write_text(HKL)
    (tmp_path / "src.txt").write_text("-10 0 0 1 1e-10\n-10 0.01 0 3 1e-10\n")
    before = sorted(os.listdir(tmp_path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp = nbjax.experiment_from_args(
            [
                "-hkl",
                "p1.hkl",
                "-cell",
                "50",
                "50",
                "50",
                "90",
                "90",
                "90",
                "-N",
                "3",
                "-detpixels",
                "8",
                "-sourcefile",
                "src.txt",
            ]
        )
    assert sorted(os.listdir(tmp_path)) == before, (
        "the API must not write Fdump.bin (or anything) into the working folder"
    )
    assert exp.structure_factors.grid is not None
    texts = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("source weights differ" in t for t in texts), texts
    # the CLI, as the C program, writes the Fdump file
    import io

    from nbjax.cli.main import run

    assert (
        run(
            [
                "-hkl",
                "p1.hkl",
                "-cell",
                "50",
                "50",
                "50",
                "90",
                "90",
                "90",
                "-N",
                "3",
                "-detpixels",
                "8",
                "-nonoise",
                "-nopgm",
                "-noprogress",
            ],
            out=io.StringIO(),
            err=io.StringIO(),
        )
        == 0
    )
    assert (tmp_path / "Fdump.bin").stat().st_size > 0


def test_physical_mode_refuses_negative_weights(tmp_path):
    from nbjax.errors import NBError

    (tmp_path / "src.txt").write_text("-10 0 0 -1 1e-10\n-10 0.01 0 3 1e-10\n")
    with pytest.raises(NBError, match="source weights are negative"):
        nbjax.experiment_from_args(
            [
                "-default_F",
                "100",
                "-cell",
                "50",
                "50",
                "50",
                "90",
                "90",
                "90",
                "-N",
                "3",
                "-detpixels",
                "8",
                "-sourcefile",
                str(tmp_path / "src.txt"),
            ],
            physical=True,
        )


@pytest.mark.parametrize("physical", [False, True])
def test_cell_the_c_setup_changes_is_announced(physical):
    """nanoBragg's set-up does not give back every triclinic cell (golden case triclinic-256:
    -cell 70 80 90 85 95 105 renders, and C prints, 'Unit Cell: 70 80 90 84.9923 95.0077
    105.001'): one warning names both cells, in either mode; a cubic cell gets none."""
    import json
    from pathlib import Path

    case = Path(__file__).parent / "data" / "c_golden" / "triclinic-256"
    printed = next(line for line in (case / "c_stdout.txt").read_text().splitlines() if line.startswith("Unit Cell:"))
    args = json.loads((case / "args.json").read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nbjax.experiment_from_args(args, physical=physical)
        nbjax.experiment_from_args(
            ["-cell", "50", "50", "50", "90", "90", "90", "-default_F", "1", "-detpixels", "8"], physical=physical
        )
    texts = [str(w.message) for w in caught if "set-up turns -cell" in str(w.message)]
    assert texts == [
        f"nbjax: quirk: nanoBragg's set-up turns -cell 70 80 90 85 95 105 into {printed.split(':')[1].strip()}; "
        "nbjax renders that cell, as nanoBragg does"
    ]
