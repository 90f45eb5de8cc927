"""``-mtz FILE [-mtz_column LABEL]``: MTZ files written here with gemmi, expanded to P1 with the
space group's operations and Friedel mates (checked against hand-written equivalents and
gemmi's own ``Op.apply_to_hkl``), rendered bit for bit as the equivalent P1 ``-hkl`` file, and
one-line errors for files nbjax cannot use."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import nbjax
from nbjax.cli.main import main
from nbjax.errors import NBError
from nbjax.io.hkl import read_hkl
from nbjax.io.mtz import read_mtz, read_mtz_reflections

gemmi = pytest.importorskip("gemmi")

# (h, k, l, F, I) in the asymmetric unit of P 43 21 2 (checked below with gemmi.ReciprocalAsu)
TABLE = [
    (2, 1, 3, 10.5, 110.25),
    (0, 0, 4, 5.25, 27.5625),
    (2, 1, 0, 7.0, 49.0),
    (3, 1, 2, 12.0, -4.0),  # a negative intensity: F = sqrt(max(I, 0)) = 0
    (2, 0, 1, 3.5, 12.25),
    (2, 2, 1, 8.75, 76.5625),
]


def _write_mtz(path, spacegroup, rows, columns=(("FP", "F"), ("SIGFP", "Q"), ("I", "J"))):
    """An MTZ file of ``rows`` (h, k, l, values...) with the given (label, type) columns."""
    mtz = gemmi.Mtz(with_base=True)
    mtz.spacegroup = gemmi.SpaceGroup(spacegroup)
    mtz.set_cell_for_all(gemmi.UnitCell(50, 50, 70, 90, 90, 90))
    mtz.add_dataset("crystal")
    for label, kind in columns:
        mtz.add_column(label, kind)
    mtz.set_data(np.array(rows, dtype=np.float32))
    mtz.write_to_file(str(path))
    return str(path)


def _table_mtz(tmp_path, spacegroup="P 43 21 2"):
    rows = [(h, k, l, F, 0.5, I) for h, k, l, F, I in TABLE]
    return _write_mtz(tmp_path / "t.mtz", spacegroup, rows)


def _as_dict(refl):
    return {tuple(int(x) for x in h): float(F) for h, F in zip(refl.hkl, refl.F, strict=True)}


def test_table_is_in_the_asymmetric_unit():
    asu = gemmi.ReciprocalAsu(gemmi.SpaceGroup("P 43 21 2"))
    assert all(asu.is_in([h, k, l]) for h, k, l, _, _ in TABLE)


def test_p43212_expands_to_the_hand_written_equivalents(tmp_path):
    """P 43 21 2 (point group 422) with Friedel mates (4/mmm): (h k l) has the 16 equivalents
    (+-h +-k +-l) and (+-k +-h +-l) with the signs paired as below, all with its F."""
    refl = read_mtz_reflections(_table_mtz(tmp_path))
    got = _as_dict(refl)

    def equivalents(h, k, l):
        ops = [(h, k, l), (-h, -k, l), (-k, h, l), (k, -h, l), (h, -k, -l), (-h, k, -l), (k, h, -l), (-k, -h, -l)]
        return set(ops) | {(-a, -b, -c) for a, b, c in ops}

    assert got[(2, 1, 3)] == 10.5
    for hkl in [(1, 2, -3), (-1, 2, 3), (2, -1, -3), (-2, -1, -3), (1, -2, 3), (-1, -2, 3), (-2, 1, -3)]:
        assert got[hkl] == 10.5, hkl
    assert got[(0, 0, -4)] == 5.25 and got[(-1, -2, 0)] == 7.0 and got[(1, -2, 0)] == 7.0
    expected = {}
    for h, k, l, F, _ in TABLE:
        for e in equivalents(h, k, l):
            assert expected.setdefault(e, F) == F  # the table's reflections are not equivalent to each other
    assert got == expected
    assert refl.labels == ("FP",) and refl.kind == "amplitudes" and refl.spacegroup == "P 43 21 2"
    assert refl.measured == len(TABLE)


@pytest.mark.parametrize("spacegroup", ["P 21 21 21", "P 43 21 2", "C 2 2 21", "P 61 2 2", "P 1 21 1"])
def test_expansion_equals_gemmi_apply_to_hkl(spacegroup, tmp_path):
    """Against gemmi's own operations, one reflection at a time (Op.apply_to_hkl)."""
    sg = gemmi.SpaceGroup(spacegroup)
    asu = gemmi.ReciprocalAsu(sg)
    ops = sg.operations()
    rows, seen = [], set()
    for h, k, l in itertools.product(range(-3, 4), repeat=3):
        if (h, k, l) != (0, 0, 0) and asu.is_in([h, k, l]) and not ops.is_systematically_absent([h, k, l]):
            rows.append((h, k, l, 1.0 + len(rows) * 0.25))
            seen.add((h, k, l))
    path = _write_mtz(tmp_path / "g.mtz", spacegroup, rows, columns=(("F", "F"),))
    expected = {}
    for h, k, l, F in rows:
        for op in ops.sym_ops:
            a, b, c = op.apply_to_hkl([h, k, l])
            expected[(a, b, c)] = F
            expected[(-a, -b, -c)] = F
    assert _as_dict(read_mtz_reflections(path)) == expected
    if spacegroup == "P 21 21 21":  # mmm: every sign combination
        h, k, l, F = rows[0]
        for signs in itertools.product((1, -1), repeat=3):
            assert expected[(signs[0] * h, signs[1] * k, signs[2] * l)] == F


def test_intensities_become_sqrt_of_max_i_0(tmp_path):
    path = _table_mtz(tmp_path)
    with pytest.raises(NBError):
        read_mtz_reflections(path, column="SIGFP")
    refl = read_mtz_reflections(path, column="I")
    got = _as_dict(refl)
    assert refl.kind == "intensities" and refl.negative == 1
    for h, k, l, _, I in TABLE:
        assert got[(h, k, l)] == np.sqrt(max(I, 0.0)), (h, k, l)
        assert got[(-k, -h, -l)] == np.sqrt(max(I, 0.0))
    assert got[(3, 1, 2)] == 0.0
    grid = read_mtz(path, column="I")
    assert grid.warnings == (f"{path}: 1 negative intensities in column I taken as F = 0 (F = sqrt(max(I, 0)))",)
    # default column: the first F, even after a J column; a file with only J takes J
    j_first = _write_mtz(
        tmp_path / "j.mtz", "P 43 21 2", [(h, k, l, I, F) for h, k, l, F, I in TABLE], (("I", "J"), ("FP", "F"))
    )
    assert read_mtz_reflections(j_first).labels == ("FP",)
    only_j = _write_mtz(tmp_path / "oj.mtz", "P 43 21 2", [(h, k, l, I) for h, k, l, _, I in TABLE], (("IMEAN", "J"),))
    assert read_mtz_reflections(only_j).labels == ("IMEAN",)


def test_anomalous_pair_keeps_the_friedel_difference(tmp_path):
    rows = [(2, 1, 3, 10.0, 11.0), (2, 1, 0, 7.0, 7.0), (2, 0, 1, 4.0, np.nan), (2, 2, 1, np.nan, 6.0)]
    path = _write_mtz(tmp_path / "a.mtz", "P 43 21 2", rows, (("F(+)", "G"), ("F(-)", "G")))
    for column in (None, "F(+)", "F(-)"):
        refl = read_mtz_reflections(path, column=column)
        assert refl.labels == ("F(+)", "F(-)") and refl.kind == "anomalous amplitudes"
        got = _as_dict(refl)
        for h, k, l in [(2, 1, 3), (1, 2, -3), (-1, 2, 3), (2, -1, -3)]:  # h R (acentric)
            assert got[(h, k, l)] == 10.0 and got[(-h, -k, -l)] == 11.0  # F(-h R) = F(-)
        assert got[(2, 0, 1)] == got[(-2, 0, -1)] == 4.0  # F(-) missing: F(+) serves both (centric)
        assert got[(2, 2, 1)] == got[(-2, -2, -1)] == 6.0
    # an intensity pair named I+/I-: F = sqrt(I) on each side
    rows = [(2, 1, 3, 0.5, 100.0, 121.0)]
    path = _write_mtz(tmp_path / "k.mtz", "P 43 21 2", rows, (("SIGI", "Q"), ("I+", "K"), ("I-", "K")))
    refl = read_mtz_reflections(path)
    assert refl.labels == ("I+", "I-") and refl.kind == "anomalous intensities"
    got = _as_dict(refl)
    assert got[(1, 2, -3)] == 10.0 and got[(-1, -2, 3)] == 11.0


def _render_args(extra):
    base = ["-cell", "50", "50", "70", "90", "90", "90", "-misset", "5", "-12", "20", "-N", "3", "-detpixels", "32"]
    return base + ["-pixel", "0.5", "-distance", "60", "-oversample", "1", "-lambda", "1.8"] + extra


@pytest.mark.parametrize("column", ["FP", "I"])
@pytest.mark.parametrize("physical", [False, True], ids=["c-compatible", "physical"])
def test_mtz_renders_as_the_equivalent_p1_hkl_file_bit_for_bit(column, physical, tmp_path):
    path = _table_mtz(tmp_path)
    refl = read_mtz_reflections(path, column)
    hkl_path = tmp_path / "p1.hkl"  # the P1 file with the same values, written independently of the grid
    hkl_path.write_text("".join(f"{h} {k} {l} {F!r}\n" for (h, k, l), F in sorted(_as_dict(refl).items())))
    for default_F in ("0", "2.5"):
        extra = ["-default_F", default_F, "-interpolate" if default_F == "0" else "-nointerpolate"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exp_m = nbjax.experiment_from_args(_render_args(extra + ["-mtz", path, "-mtz_column", column]), physical)
        negative = [str(w.message) for w in caught if "negative intensities" in str(w.message)]
        assert negative == (
            [f"nbjax: {path}: 1 negative intensities in column I taken as F = 0 (F = sqrt(max(I, 0)))"]
            if column == "I"
            else []
        )
        exp_h = nbjax.experiment_from_args(_render_args(extra + ["-hkl", str(hkl_path)]), physical)
        np.testing.assert_array_equal(exp_m.structure_factors.grid, exp_h.structure_factors.grid)
        image_m, image_h = np.asarray(nbjax.render(exp_m)), np.asarray(nbjax.render(exp_h))
        assert image_m.max() > 0
        np.testing.assert_array_equal(image_m, image_h)
    grid = read_mtz(path, 2.5, column)
    hkl_grid = read_hkl(hkl_path, 2.5)
    assert (grid.h_min, grid.h_max, grid.l_min, grid.l_max, grid.hkls) == (
        hkl_grid.h_min,
        hkl_grid.h_max,
        hkl_grid.l_min,
        hkl_grid.l_max,
        hkl_grid.hkls,
    )
    assert grid.F[0, 0, 0] == 2.5 and grid.F[-1, -1, -1] == 0.0  # unlisted: default_F; C's extra slab: 0


def test_cli_mtz_writes_the_fdump_of_the_p1_grid(tmp_path, monkeypatch, capsys):
    from nbjax.io.fdump import read_fdump

    monkeypatch.chdir(tmp_path)
    path = _table_mtz(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(_render_args(["-mtz", path, "-noprogress", "-nonoise", "-nopgm"]))
    assert stop.value.code == 0
    out = capsys.readouterr().out
    n = len(read_mtz_reflections(path).F)
    assert (
        f"reading {path}: column FP (amplitudes), space group P 43 21 2, 6 reflections, {n} in P1 with Friedel mates"
        in (out.splitlines())
    )
    assert f"  {n} initialized hkls (all others =0)" in out.splitlines()
    np.testing.assert_array_equal(read_fdump("Fdump.bin").F, read_mtz(path).F)


def _fails(args, capsys, message, folder):
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(SystemExit) as stop:
        main(args + ["-noprogress"])
    err = capsys.readouterr().err
    assert err.splitlines() == [f"nbjax: error: {message}"], err
    assert stop.value.code == 2
    assert sorted(p.name for p in folder.iterdir()) == before


def test_bad_mtz_inputs_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not.mtz").write_text("1 2 3 4\n" * 40)  # an HKL file
    (tmp_path / "empty.mtz").write_bytes(b"")
    good = _table_mtz(tmp_path)
    _write_mtz(tmp_path / "sig.mtz", "P 43 21 2", [(1, 2, 3, 0.5)], (("SIGFP", "Q"),))
    cols = "H:H K:H L:H FP:F SIGFP:Q I:J"
    cases = [
        (
            ["-mtz", "not.mtz"],
            "not.mtz: not an MTZ file gemmi can read (Not an MTZ file - it does not start with 'MTZ ')",
        ),
        (
            ["-mtz", "empty.mtz"],
            "empty.mtz: not an MTZ file gemmi can read (Could not read the MTZ file (is it empty?))",
        ),
        (["-mtz", "missing.mtz"], "cannot read missing.mtz: No such file or directory"),
        (
            ["-mtz", "sig.mtz"],
            "sig.mtz has no amplitude (F), intensity (J) or anomalous pair (G, K) column to take structure factors "
            "from (columns: H:H K:H L:H SIGFP:Q); name one with -mtz_column",
        ),
        (["-mtz", good, "-mtz_column", "FOBS"], f"-mtz_column: {good} has no column 'FOBS' (columns: {cols})"),
        (
            ["-mtz", good, "-mtz_column", "SIGFP"],
            f"-mtz_column: {good} column 'SIGFP' has type Q; give an amplitude (F), intensity (J) or anomalous "
            f"F(+)/F(-) (G) or I(+)/I(-) (K) column (columns: {cols})",
        ),
        (["-mtz", good, "-hkl", "x.hkl"], "-mtz and -hkl both give the structure factors: give one of them"),
        (["-mtz_column", "FP", "-default_F", "1"], "-mtz_column names a column of the -mtz file: give -mtz FILE"),
    ]
    for extra, message in cases:
        _fails(_render_args(extra), capsys, message, tmp_path)


def test_inconsistent_equivalents_and_unmerged_files_are_refused(tmp_path):
    # (1 2 3) and (2 1 -3) are equivalent in P 43 21 2 but carry different F
    path = _write_mtz(tmp_path / "c.mtz", "P 43 21 2", [(1, 2, 3, 10.0), (2, 1, -3, 11.0)], (("F", "F"),))
    with pytest.raises(NBError) as info:
        read_mtz_reflections(path)
    message = str(info.value)
    assert message.startswith(f"{path}: reflections 1 2 3 and 2 1 -3 both give ") and message.endswith(
        "in P 43 21 2 (symmetry equivalents or Friedel mates) but with F 10 and 11; nbjax needs merged, unique "
        "reflections"
    )
    same = _write_mtz(tmp_path / "s.mtz", "P 43 21 2", [(1, 2, 3, 10.0), (2, 1, -3, 10.0)], (("F", "F"),))
    assert len(read_mtz_reflections(same).F) == 16  # listed twice, consistent: accepted
    mtz = gemmi.read_mtz_file(path)
    mtz.batches.append(gemmi.Mtz.Batch())
    mtz.write_to_file(str(tmp_path / "u.mtz"))
    with pytest.raises(NBError, match=r"u.mtz is unmerged \(1 batches\); -mtz needs merged structure factors"):
        read_mtz_reflections(tmp_path / "u.mtz")
