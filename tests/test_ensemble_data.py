"""Synthetic serial data sets (``nbjax.ensemble.make_shots``): the table's asymmetric unit and
P1 expansion checked with gemmi independently, the truth's scales and turns, the files written;
the C renderer's Bragg image against nbjax's when NB_C_BIN is set."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

gemmi = pytest.importorskip("gemmi")

from nbjax import environment  # noqa: E402
from nbjax.ensemble import Table, make_shots, truth_table, write_hkl, write_mtz  # noqa: E402
from nbjax.ensemble import _synthetic as synth  # noqa: E402
from nbjax.errors import NBError  # noqa: E402
from nbjax.io import expt as expt_io  # noqa: E402
from nbjax.io.spectrum import read_spectrum  # noqa: E402

SG, CELL, DMIN = "P 43 21 2", (52.0, 52.0, 78.0), 4.1
SMALL = dict(panels=2, size=(64, 48), pixel_mm=0.3, distance_mm=60.0, channels=3, N=8)


def _independent_asu(space_group, cell, dmin):
    """The ASU set built another way: every hkl of a box mapped to the ASU with to_asu."""
    sg, uc = gemmi.SpaceGroup(space_group), gemmi.UnitCell(*cell)
    asu, ops = gemmi.ReciprocalAsu(sg), sg.operations()
    m = [int(x / dmin) + 1 for x in cell[:3]]
    out = set()
    for h in range(-m[0], m[0] + 1):
        for k in range(-m[1], m[1] + 1):
            for l in range(-m[2], m[2] + 1):
                if (h, k, l) == (0, 0, 0) or uc.calculate_d([h, k, l]) < dmin:
                    continue
                if ops.is_systematically_absent([h, k, l]):
                    continue
                out.add(tuple(asu.to_asu([h, k, l], ops)[0]))
    return out


@pytest.fixture(scope="module")
def table() -> Table:
    return truth_table(SG, CELL, DMIN, seed=3)


def test_table_is_the_laue_asu(table):
    want = _independent_asu(SG, (*CELL, 90.0, 90.0, 90.0), DMIN)
    got = set(map(tuple, table.hkl.tolist()))
    assert len(got) == len(table.hkl) == len(want) > 300
    assert got == want
    m = gemmi.make_miller_array(gemmi.UnitCell(*CELL, 90, 90, 90), gemmi.SpaceGroup(SG), DMIN, 0, True)
    assert len(m) == len(want)
    assert table.space_group == "P 43 21 2" and table.cell == (52.0, 52.0, 78.0, 90.0, 90.0, 90.0)


def test_wilson_amplitudes(table):
    I = table.F**2
    assert I.min() >= 0.05 * 1e4 * (1 - 1e-12)
    assert np.count_nonzero(np.isclose(I, 500.0)) > 0  # the clip is reached
    assert 0.85e4 < I.mean() < 1.2e4
    assert np.array_equal(truth_table(SG, CELL, DMIN, seed=3).F, table.F)
    assert not np.array_equal(truth_table(SG, CELL, DMIN, seed=4).F, table.F)


def test_p1_expansion_mates_share_F(table, tmp_path):
    sg = gemmi.SpaceGroup(SG)
    p1 = {}
    for line in Path(write_hkl(table, tmp_path / "t.hkl")).read_text().splitlines():
        h, k, l, f = line.split()
        assert (int(h), int(k), int(l)) not in p1
        p1[(int(h), int(k), int(l))] = float(f)
    want = set()
    for hkl, f in zip(table.hkl.tolist(), table.F.tolist(), strict=True):
        for op in sg.operations():
            mate = tuple(op.apply_to_hkl(hkl))
            for m in (mate, tuple(-x for x in mate)):
                assert p1[m] == f, (hkl, m)
                want.add(m)
    assert set(p1) == want
    assert len(p1) > 8 * len(table.hkl)


def test_mtz_round_trip(table, tmp_path):
    mtz = gemmi.read_mtz_file(write_mtz(table, tmp_path / "t.mtz"))
    assert [c.label for c in mtz.columns] == ["H", "K", "L", "F"] and mtz.columns[3].type == "F"
    assert mtz.spacegroup.hm == "P 43 21 2"
    assert np.allclose(mtz.cell.parameters, (52, 52, 78, 90, 90, 90))
    data = np.asarray(mtz, np.float64)
    assert np.array_equal(data[:, :3].astype(int), table.hkl)
    assert np.allclose(data[:, 3], table.F, rtol=1e-6)


def _turn(rows, deg):
    """rows turned about lab x, then y, then z (plain rotation matrices)."""
    x, y, z = np.radians(deg)
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    return rows @ (rz @ ry @ rx).T


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = tmp_path_factory.mktemp("shots")
    return make_shots(out, 3, seed=5, table=truth_table(SG, CELL, 3.5, seed=5), fluence=1e27, **SMALL)


def test_scales_and_missets(shots):
    assert shots.scales.shape == (3,) and np.all(shots.scales > 0)
    assert abs(np.mean(np.log(shots.scales))) < 1e-14
    assert not np.allclose(shots.scales, 1.0)
    assert shots.missets_deg.shape == (3, 3) and 0 < np.abs(shots.missets_deg).max() < 0.5


def test_truth_rows_are_the_start_turned(shots):
    for k, (expt, _) in enumerate(shots.shots):
        crystal = expt_io.read_expt(expt).experiment(0).crystal
        start = crystal.real_space
        assert np.allclose(np.linalg.norm(start, axis=1), CELL, rtol=1e-12)
        assert crystal.hall_symbol.strip() == "P 4nw 2abw" and crystal.half_mosaicity_deg is None
        assert np.allclose(shots.rows[k], _turn(start, shots.missets_deg[k]), rtol=0, atol=1e-10)
        assert not np.allclose(shots.rows[k], start, atol=1e-6)


def test_files_and_truth_json(shots):
    out = Path(shots.outdir)
    lines = Path(shots.list_path).read_text().splitlines()
    assert lines == [f"shot_{k:05d}.expt shot_{k:05d}.npy spectrum.txt" for k in range(3)]
    for line, (expt, npy) in zip(lines, shots.shots, strict=True):
        e, n, s = line.split()
        assert (out / e).samefile(expt) and (out / n).samefile(npy) and (out / s).is_file()
    doc = json.loads((out / "truth.json").read_text())
    assert doc["space_group"] == "P 43 21 2" and doc["cell"] == [52.0, 52.0, 78.0, 90.0, 90.0, 90.0]
    assert [s["scale"] for s in doc["shots"]] == shots.scales.tolist()
    assert np.array_equal([s["misset_deg"] for s in doc["shots"]], shots.missets_deg)
    assert np.array_equal([s["real_space"] for s in doc["shots"]], shots.rows)
    assert shots.user_args[:4] == ["-N", "8", "-fluence", repr(1e27)] and shots.user_args[4] == "-spectrum"
    channels = read_spectrum(shots.spectrum)
    assert channels.wavelengths.size == 3 and np.all(channels.weights == 1.0)
    assert np.allclose(channels.wavelengths * 1e10, [1.3 * 0.995, 1.3, 1.3 * 1.005])


def test_shot_images_are_counts(shots):
    for expt, npy in shots.shots:
        image = np.load(npy)
        assert image.shape == (2, 48, 64) and image.dtype == np.float32
        assert np.all(np.isfinite(image)) and image.min() >= 0 and np.array_equal(image, np.rint(image))
        assert image.max() > 20 and np.median(image) > 0
        panels = expt_io.read_expt(expt).experiment(0).panels
        assert [p.shape for p in panels] == [(48, 64), (48, 64)]
    assert shots.spots.shape == (3,) and all(len(s) <= n for s, n in zip(shots.seen, shots.spots, strict=True))


def test_bad_renderer(tmp_path):
    with pytest.raises(NBError, match="renderer"):
        make_shots(tmp_path, 1, renderer="cuda")
    with pytest.raises(NBError, match="C nanoBragg"):
        make_shots(tmp_path, 1, renderer="c", c_bin=None)


C_BIN = environment.get("NB_C_BIN", "")


@pytest.mark.skipif(not (C_BIN and os.access(C_BIN, os.X_OK)), reason="needs the C nanoBragg: set NB_C_BIN")
def test_c_bragg_image_equals_nbjax(tmp_path):
    truth = make_shots(
        tmp_path, 1, seed=2, table=truth_table(SG, CELL, 3.5, seed=2), fluence=1e27, renderer="c", c_bin=C_BIN, **SMALL
    )
    assert truth.parity is not None and truth.parity <= 1e-5
    doc = synth.shot_json(truth.rows[0], " P 4nw 2abw", 416.0, _detector(), 1.3, "x")
    experiment = expt_io.ExperimentList("t", doc)
    args = synth._with_fluence(truth.render_args[:-2], 1e27 * truth.scales[0])  # no water
    c = synth.render_c(C_BIN, experiment.experiment(0), synth._c_args(args, str(Path(tmp_path, "sources_c.txt"))))
    ours = synth.render_nbjax(experiment.experiment(0), args).astype(np.float32)
    assert c.max() > 20 and np.max(np.abs(ours - c)) <= 1e-5 * c.max()


def _detector():
    return synth.detector_json(SMALL["panels"], SMALL["size"], SMALL["pixel_mm"], SMALL["distance_mm"])
