"""Shoebox refinement of a still from the command line (``nbjax fit -expt ... -data ...``).

* End to end: a truth (the hierarchical 8-panel fixture, tests/expt_fixtures.py, without its
  mosaic spread, crystal turned by TRUE_MISSET in ``nbjax.fit.Misset``'s convention, cell x
  CELL_FACTOR, N per axis TRUE_N, a water background) rendered by nbjax with Poisson noise is
  refined from the untouched fixture: exit 0, refined.expt readable with the crystal closer to
  the truth than the start, fit.json with shoeboxes, misset, cell and N within 3 sigma of the
  truth, the report PNG.  scripts/still-calibration does the same over many realisations with
  the truth rendered by the C program and checks the pulls.
* Bad inputs of the still command line: one ``nbjax: error:`` line, non-zero exit, nothing
  written in -outdir.
* Constant background planes (``-background_model constant``) start from one value per shoebox.
"""

from __future__ import annotations

import json

import expt_fixtures as fx
import numpy as np
import pytest

from nbjax import panels as P
from nbjax.io import expt as E
from nbjax.physics.rotations import rotate_xyz

TRUE_MISSET = (0.08, -0.05, 0.06)  # degrees about lab x, then y, then z (Misset's order)
CELL_FACTOR = 1.002
TRUE_N = (12, 10, 9)
COMMON = ["-default_F", "100", "-fluence", "1e27"]
FREE = "misset,cell,N,scale,background_planes"


def _fixture():
    doc = fx.hierarchical_8panel()
    del doc["crystal"][0]["ML_half_mosaicity_deg"]  # one domain: a small, fast model
    return doc


def _truth(doc):
    """The fixture turned by TRUE_MISSET and scaled by CELL_FACTOR: (list JSON, rows a, b, c)."""
    import copy

    doc = copy.deepcopy(doc)
    crystal = doc["crystal"][0]
    r = np.radians(TRUE_MISSET)
    for key in ("real_space_a", "real_space_b", "real_space_c"):
        crystal[key] = [float(x) for x in rotate_xyz(np.asarray(crystal[key]), *r, np) * CELL_FACTOR]
    real = np.stack([crystal[k] for k in ("real_space_a", "real_space_b", "real_space_c")])
    return doc, real


def _cli(args, capsys, folder, monkeypatch):
    from nbjax.cli.main import main

    monkeypatch.chdir(folder)
    monkeypatch.setenv("NBJAX_CACHE_DIR", "off")
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    """(folder with start.expt and still.npy, the truth's rows a, b, c)."""
    folder = tmp_path_factory.mktemp("still")
    start = _fixture()
    fx.write(start, folder / "start.expt")
    doc, real = _truth(start)
    truth = E.ExperimentList("truth", doc).experiment(0)
    args = COMMON + ["-Na", str(TRUE_N[0]), "-Nb", str(TRUE_N[1]), "-Nc", str(TRUE_N[2]), "-water", "0.5"]
    mean = np.asarray(P.render_panels(P.panel_experiments(truth, args).experiments))
    np.save(folder / "still.npy", np.random.default_rng(17).poisson(mean).astype(np.float32))
    return folder, real


def test_still_refinement_end_to_end(still, capsys, monkeypatch):
    folder, truth = still
    (folder / "out").mkdir()
    args = ["fit", "-expt", "start.expt", "-data", "still.npy", *COMMON, "-N", "10", "-free", FREE]
    code, out, err = _cli(args + ["-outdir", "out", "-noprogress"], capsys, folder, monkeypatch)
    assert code == 0, err
    assert "shoeboxes of 11x11 pixels on 8 panel(s)" in out
    refined = E.read_expt(folder / "out" / "refined.expt").experiment(0).crystal.real_space
    start = E.read_expt(folder / "start.expt").experiment(0).crystal.real_space
    assert np.linalg.norm(refined - truth) < 0.5 * np.linalg.norm(start - truth)
    doc = json.loads((folder / "out" / "fit.json").read_text())
    assert doc["shoeboxes"]["count"] > 0 and doc["converged"]
    fitted = {p["name"]: p for p in doc["parameters"]}
    expected = {f"misset.{x}": v for x, v in zip("xyz", TRUE_MISSET, strict=True)}
    expected |= {f"cell.{x}": v for x, v in zip("abc", np.linalg.norm(truth, axis=1), strict=True)}
    expected |= {f"N.{x}": v for x, v in zip("abc", TRUE_N, strict=True)}
    for name, value in expected.items():
        p = fitted[name]
        assert abs(p["value"] - value) < 3 * p["stderr"], (name, p, value)
    assert (folder / "out" / "fit_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("model.npy", "residual.npy"):
        assert np.load(folder / "out" / name).shape == (8, 40, 48)


def test_still_bad_inputs(still, tmp_path, capsys, monkeypatch):
    folder, _ = still
    for name in ("start.expt", "still.npy"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    data = np.load(folder / "still.npy")
    np.save(tmp_path / "seven.npy", data[:7])
    np.save(tmp_path / "narrow.npy", data[:, :, :47])
    (tmp_path / "out").mkdir()
    base = ["fit", "-expt", "start.expt", *COMMON, "-N", "10", "-outdir", "out", "-noprogress"]
    good = ["-data", "still.npy", "-free", FREE]
    cases = [
        (["-data", "seven.npy", "-free", FREE], "panels=(8, 40, 48) expected"),
        (["-data", "narrow.npy", "-free", FREE], "panels=(8, 40, 48) expected"),
        (["-data", "still.npy", "-free", "misset,bogus"], "unknown fit parameter 'bogus'"),
        (good + ["-background_model", "junk"], "-background_model: 'junk' is not plane or constant"),
        (good + ["-shoebox", "1"], "-shoebox: must be at least 3"),
        (["-free", FREE], "give the still with -data"),
        (good + ["-spot_threshold", "x"], "-spot_threshold: 'x' is not a number"),
        (good + ["-spot_threshold", "-1"], "-spot_threshold: must be at least 0"),
        (good + ["-adu", "0"], "-adu: must be at least"),
        (good + ["-pedestal", "abc"], "-pedestal: 'abc' is not a number"),
        (good + ["-loss", "readout", "-sigma_readout", "-2"], "-sigma_readout: must be at least 0"),
        (good + ["-shoebox", "7.5"], "-shoebox: '7.5' is not a whole number"),
        (good + ["-fitmask", "nomask.npy"], "nomask.npy"),
    ]
    for extra, message in cases:
        code, out, err = _cli(base + extra, capsys, tmp_path, monkeypatch)
        assert code != 0 and err.startswith("nbjax: error:") and err.count("\n") == 1, (extra, err)
        assert message in err, (extra, err)
        assert list((tmp_path / "out").iterdir()) == []  # nothing written


def test_constant_planes_start_with_one_value_per_shoebox(still):
    """``-background_model constant`` (tilt=False): the planes start from c alone (three
    starting values per shoebox were once handed to a one-value plane, and the fit failed)."""
    import nbjax.fit as nf
    from nbjax.fit._still import plane_start, still_parameters

    folder, _ = still
    experiment = E.read_expt(folder / "start.expt").experiment(0)
    built = P.panel_experiments(experiment, COMMON + ["-N", "10"])
    boxes = nf.shoeboxes([np.asarray(x) for x in P.render_panels(built.experiments)])
    data = [np.asarray(x, np.float64) for x in np.load(folder / "still.npy")]
    masks = [np.ones(d.shape, bool) for d in data]
    expected = plane_start(data, masks, boxes)
    for tilt, per in ((True, 3), (False, 1)):
        (planes,), _ = still_parameters(["background_planes"], built, experiment, boxes, data, masks, tilt)
        start = planes.initial(built.experiments[0])
        assert start.shape == (boxes.count, per)
        np.testing.assert_array_equal(start, expected[:, :per])
