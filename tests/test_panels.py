"""DIALS experiment lists and multi-panel detectors.

* Per-panel parity: tests/data/c_panels holds DIALS experiments (a tilted single panel and a
  hierarchical 8-panel detector, made by tests/expt_fixtures.py) and the C program's image of
  every panel, run with the argv ``nbjax.panels.panel_argv`` gives (stored as argv.json, so the
  goldens stay the images of exactly these command lines; scripts/make-panel-goldens).  With one
  sample per pixel the physical image of a panel is the C image (shared/design), so the nbjax
  stack equals the C runs to float32 rounding: max |diff| / max <= 1e-6 (float64 render,
  written as float32 like C), <= 1e-5 in single precision.
* The DIALS frame conventions are checked independently of nanoBragg: the hierarchy composed by
  4x4 homogeneous matrices, and the brightest pixels of the rendered panels satisfy the Laue
  condition h = A^T (s1 - s0) ~ integer with s0 = -direction/lambda.
* Reading and writing: a list read and written unchanged is the same JSON; refined values go
  back into the parents' frames.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import expt_fixtures as fx
import jax.numpy as jnp
import numpy as np
import pytest

from nbjax import panels as P
from nbjax.errors import NBError
from nbjax.io import expt as E

DATA = Path(__file__).parent / "data" / "c_panels"
with open(DATA / "cases.toml", "rb") as _fh:
    CASES = tomllib.load(_fh)["case"]


def _experiment(case):
    return E.read_expt(DATA / case["id"] / "experiments.expt").experiment(0)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_each_panel_equals_its_c_run(case):
    pe = P.panel_experiments(_experiment(case), case["args"])
    stored = json.loads((DATA / case["id"] / "argv.json").read_text())
    assert pe.argv == stored  # the goldens are the images of exactly these command lines
    assert len(pe.experiments) == case["panels"]
    images = np.asarray(P.render_panels(pe.experiments))
    singles = np.asarray(P.render_panels(pe.experiments, dtype=jnp.float32))
    assert images.shape[0] == case["panels"]
    for k in range(case["panels"]):
        c = np.fromfile(DATA / case["id"] / f"p{k}.bin", "<f4").reshape(images[k].shape)
        assert c.max() > 50 * np.median(c) > 0  # the panel sees spots
        assert np.max(np.abs(images[k].astype(np.float32) - c)) <= 1e-6 * c.max()
        assert np.max(np.abs(singles[k] - c)) <= 1e-5 * c.max()


def _homogeneous(node):
    fast, slow = np.asarray(node["fast_axis"], float), np.asarray(node["slow_axis"], float)
    fast, slow = fast / np.linalg.norm(fast), slow / np.linalg.norm(slow)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2] = fast, slow, np.cross(fast, slow) / np.linalg.norm(np.cross(fast, slow))
    m[:3, 3] = node["origin"]
    return m


def test_hierarchy_composes_as_dxtbx():
    """Global panel frames = product of the 4x4 frames from the root down (computed here from
    the JSON alone) for the 8-panel detector."""
    doc = fx.hierarchical_8panel()
    det = doc["detector"][0]
    expected = {}

    def walk(node, m):
        if "panel" in node:
            expected[node["panel"]] = m @ _homogeneous(det["panels"][node["panel"]])
            return
        for child in node["children"]:
            walk(child, m @ _homogeneous(node))

    walk(det["hierarchy"], np.eye(4))
    panels = E.ExperimentList("fixture", doc).experiment(0).panels
    assert len(panels) == 8 == len(expected)
    for k, panel in enumerate(panels):
        np.testing.assert_allclose(panel.origin, expected[k][:3, 3], rtol=0, atol=1e-12)
        np.testing.assert_allclose(panel.fast, expected[k][:3, 0], rtol=0, atol=1e-14)
        np.testing.assert_allclose(panel.slow, expected[k][:3, 1], rtol=0, atol=1e-14)
    # the panels are spread over the detector, not stacked on one another
    assert len({tuple(np.round(p.origin, 3)) for p in panels}) == 8


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bright_pixels_satisfy_the_laue_condition(case):
    """Independent of nanoBragg's frames: the brightest pixel of each panel, at its lab
    position from the DIALS panel (origin + (i + 1/2) p fast + (j + 1/2) p slow), has
    fractional Miller indices A^T (s1 - s0) within 0.15 of integers."""
    experiment = _experiment(case)
    pe = P.panel_experiments(experiment, case["args"])
    images = np.asarray(P.render_panels(pe.experiments))
    beam, real = experiment.beam, experiment.crystal.real_space
    s0 = -beam.direction / beam.wavelength
    for panel, image in zip(experiment.panels, images, strict=True):
        jj, ii = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
        pos = (
            panel.origin
            + ((ii + 0.5) * panel.pixel_size[0])[..., None] * panel.fast
            + ((jj + 0.5) * panel.pixel_size[1])[..., None] * panel.slow
        )
        s1 = pos / np.linalg.norm(pos, axis=-1, keepdims=True) / beam.wavelength
        hkl = (s1 - s0) @ real.T  # (slow, fast, 3): a . (s1 - s0), ...
        bragg = np.any(np.round(hkl) != 0, axis=-1)  # not the forward (000) peak
        j, i = np.unravel_index(np.argmax(np.where(bragg, image, -1.0)), image.shape)
        assert image[j, i] > 20 * np.median(image), panel.name
        assert np.max(np.abs(hkl[j, i] - np.round(hkl[j, i]))) < 0.15, (panel.name, hkl[j, i])


def test_read_write_unchanged_is_the_same_json(tmp_path):
    for doc in (fx.tilted_panel(), fx.hierarchical_8panel()):
        path = fx.write(doc, tmp_path / "in.expt")
        elist = E.read_expt(path)
        E.write_expt(tmp_path / "out.expt", elist.refined(0))
        assert json.loads((tmp_path / "out.expt").read_text()) == json.loads(Path(path).read_text())


def test_refined_values_go_back_into_the_file(tmp_path):
    doc = fx.hierarchical_8panel()
    elist = E.ExperimentList("fixture", doc)
    experiment = elist.experiment(0)
    moved = {3: experiment.panels[3].origin + np.array([0.05, -0.02, 0.3])}
    real = experiment.crystal.real_space * 1.001
    out = elist.refined(0, real_space=real, wavelength=1.2995, panel_origins=moved, half_mosaicity_deg=0.05)
    again = E.ExperimentList("refined", out).experiment(0)
    np.testing.assert_allclose(again.panels[3].origin, moved[3], rtol=0, atol=1e-12)
    for k in (0, 1, 2, 4, 5, 6, 7):
        np.testing.assert_allclose(again.panels[k].origin, experiment.panels[k].origin, rtol=0, atol=1e-12)
        assert out["detector"][0]["panels"][k] == doc["detector"][0]["panels"][k]
    np.testing.assert_allclose(again.crystal.real_space, real, rtol=1e-15)
    assert again.beam.wavelength == 1.2995 and again.crystal.half_mosaicity_deg == 0.05
    assert out["detector"][0]["hierarchy"] == doc["detector"][0]["hierarchy"]
    assert doc["crystal"][0]["real_space_a"] != out["crystal"][0]["real_space_a"]  # the input is not changed


def test_beam_conventions():
    """dxtbx's direction points to the source; E = normal x propagation; Kahn = 2f - 1."""
    beam = E.ExperimentList("fixture", fx.tilted_panel()).experiment(0).beam
    np.testing.assert_array_equal(beam.propagation, [0.0, 0.0, -1.0])
    np.testing.assert_allclose(beam.e_vector, [-1.0, 0.0, 0.0], atol=1e-15)
    assert beam.kahn == pytest.approx(0.998)


def test_stills_sizes_and_mosaicity_become_flags():
    experiment = E.ExperimentList("fixture", fx.tilted_panel()).experiment(0)
    flags, notes = P.crystal_flags(experiment.crystal, [])
    assert flags == ["-Na", "15", "-Nb", "12", "-Nc", "10", "-mosaic", "0.02"]  # 900 A / (61.2, 72.5, 88.1) A
    assert notes == []
    assert P.crystal_flags(experiment.crystal, ["-N", "5", "-mosaic", "0.1"]) == ([], [])
    huge = E.Crystal(experiment.crystal.real_space, " P 1", None, 1e6)
    flags, notes = P.crystal_flags(huge, [])
    assert flags == ["-Na", "100", "-Nb", "100", "-Nc", "100"] and "clamped" in notes[0]


def test_panels_of_two_shapes_render_as_a_list():
    doc = fx.hierarchical_8panel()
    doc["detector"][0]["panels"][5]["image_size"] = [32, 24]
    experiment = E.ExperimentList("fixture", doc).experiment(0)
    pe = P.panel_experiments(experiment, ["-default_F", "100"])
    images = P.render_panels(pe.experiments)
    assert isinstance(images, list) and images[5].shape == (24, 32) and images[0].shape == (40, 48)
    import nbjax

    np.testing.assert_array_equal(np.asarray(images[5]), np.asarray(nbjax.render(pe.experiments[5])))
    np.testing.assert_array_equal(np.asarray(images[2]), np.asarray(nbjax.render(pe.experiments[2])))


def _bad(doc, tmp_path, match, index=0):
    path = fx.write(doc, tmp_path / "bad.expt")
    with pytest.raises(NBError, match=match) as info:
        elist = E.read_expt(path)
        P.panel_experiments(elist.experiment(index), ["-default_F", "100"])
    assert "\n" not in str(info.value)


def test_bad_experiment_lists(tmp_path):
    doc = fx.tilted_panel()
    doc["detector"][0]["panels"][0]["pixel_size"] = [0.1, 0.2]
    _bad(doc, tmp_path, "square pixels only")
    doc = fx.tilted_panel()
    doc["detector"][0]["panels"][0]["fast_axis"] = [0, 0, 0]
    _bad(doc, tmp_path, "'fast_axis' is a zero vector")
    doc = fx.tilted_panel()
    del doc["beam"][0]["wavelength"]
    _bad(doc, tmp_path, "beam has no 'wavelength'")
    doc = fx.tilted_panel()
    doc["experiment"][0]["crystal"] = None
    _bad(doc, tmp_path, "has no crystal")
    _bad(fx.tilted_panel(), tmp_path, r"no experiment 3 \(the file has 1", index=3)
    doc = fx.hierarchical_8panel()
    doc["detector"][0]["hierarchy"]["children"][1]["children"][0] = {"panel": 0}
    _bad(doc, tmp_path, "names panel 0, which is missing or named twice")
    doc = fx.tilted_panel()
    doc["crystal"][0]["real_space_c"] = doc["crystal"][0]["real_space_a"]
    _bad(doc, tmp_path, "span no volume")
    (tmp_path / "x.expt").write_text("{not json")
    with pytest.raises(NBError, match="not a DIALS experiment list"):
        E.read_expt(tmp_path / "x.expt")
    with pytest.raises(NBError, match="cannot read"):
        E.read_expt(tmp_path / "missing.expt")


def _cli(args, capsys, folder, monkeypatch):
    from nbjax.cli.main import main

    monkeypatch.chdir(folder)
    monkeypatch.setenv("NBJAX_CACHE_DIR", "off")
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_cli_renders_the_panel_stack(tmp_path, capsys, monkeypatch):
    """``nbjax -expt`` writes the API's panel stack (float32 .npy, or .h5 dataset data) and a
    Poisson noise stack reproducible from -seed."""
    h5py = pytest.importorskip("h5py")
    fx.write(fx.hierarchical_8panel(), tmp_path / "h8.expt")
    args = ["-expt", "h8.expt", "-default_F", "100", "-N", "6"]
    code, out, err = _cli(
        args + ["-floatfile", "f.npy", "-noisefile", "n.h5", "-seed", "7"], capsys, tmp_path, monkeypatch
    )
    assert code == 0, err
    assert "8 panel(s)" in out and "writing f.npy" in out
    stack = np.load(tmp_path / "f.npy")
    experiment = E.read_expt(tmp_path / "h8.expt").experiment(0)
    expected = np.asarray(
        P.render_panels(P.panel_experiments(experiment, ["-default_F", "100", "-N", "6"]).experiments)
    )
    assert stack.dtype == np.float32 and stack.shape == (8, 40, 48)
    np.testing.assert_array_equal(stack, expected.astype(np.float32))
    with h5py.File(tmp_path / "n.h5") as h5:
        noise = h5["data"][...]
    assert noise.shape == stack.shape
    np.testing.assert_array_equal(noise, np.random.default_rng(7).poisson(expected).astype(np.float32))
    code, _, err = _cli(args + ["-floatfile", "g.h5"], capsys, tmp_path, monkeypatch)
    assert code == 0, err
    with h5py.File(tmp_path / "g.h5") as h5:
        np.testing.assert_array_equal(h5["data"][...], stack)


def test_cli_bad_expt_inputs(tmp_path, capsys, monkeypatch):
    fx.write(fx.tilted_panel(), tmp_path / "t.expt")
    cases = [
        (["-expt", "t.expt", "-default_F", "100", "-floatfile", "f.bin"], "-floatfile f.bin: a panel stack is written"),
        (["-expt", "missing.expt", "-default_F", "100"], "cannot read missing.expt"),
        (["-expt", "t.expt", "-expt_index", "2", "-default_F", "100"], "no experiment 2 (the file has 1"),
        (["-expt", "t.expt", "-expt_index", "-1", "-default_F", "100"], "-expt_index: expected an experiment number"),
    ]
    for args, message in cases:
        code, out, err = _cli(args, capsys, tmp_path, monkeypatch)
        assert code != 0 and message in err and err.count("\n") == 1, (args, err)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t.expt"]  # nothing written


def test_panel_motion_is_the_moved_detector(tmp_path):
    """``PanelRotation`` then ``PanelShift`` applied to each panel of the hierarchical detector
    give the panels of the list whose panels were turned about their centres and moved, computed
    here in the DIALS frame with NumPy and written back through the hierarchy
    (``ExperimentList.refined``: origins and axes in the parents' frames): the same geometry and,
    rendered, the same images."""
    from nbjax.fit._parameters import PanelRotation, PanelShift
    from nbjax.physics.rotations import rotate_xyz

    case = next(c for c in CASES if c["id"] == "hierarchical-8panel")
    elist = E.ExperimentList("fixture", fx.hierarchical_8panel())
    experiment = elist.experiment(0)
    pe = P.panel_experiments(experiment, case["args"])
    rng = np.random.default_rng(3)
    turns, shifts = rng.normal(0.0, 20.0, (8, 3)), rng.normal(0.0, 0.3, (8, 3))  # mrad, mm
    origins, axes, moved = {}, {}, []
    for k, (panel, e) in enumerate(zip(experiment.panels, pe.experiments, strict=True)):
        o, f, s = (np.asarray(v, float) for v in (panel.origin, panel.fast, panel.slow))
        (nf, ns), (pf, ps) = panel.image_size, panel.pixel_size
        c = o + 0.5 * (nf * pf * f + ns * ps * s)
        r = turns[k] * 1e-3
        origins[k] = c + rotate_xyz(o - c, *r) + shifts[k]
        axes[k] = (rotate_xyz(f, *r), rotate_xyz(s, *r))
        turned = PanelRotation().apply(e, jnp.asarray(turns[k]), e)
        moved.append(PanelShift().apply(turned, jnp.asarray(shifts[k]), e))
    again = E.ExperimentList("moved", elist.refined(0, panel_origins=origins, panel_axes=axes)).experiment(0)
    want = P.panel_experiments(again, case["args"]).experiments
    for got, w in zip(moved, want, strict=True):
        for field in ("fdet", "sdet", "odet", "pix0"):
            np.testing.assert_allclose(getattr(got.detector, field), getattr(w.detector, field), rtol=0, atol=1e-12)
    images, expected = (np.asarray(P.render_panels(x)) for x in (moved, want))
    assert np.max(np.abs(images - expected)) <= 1e-9 * expected.max()
    assert np.max(np.abs(images - np.asarray(P.render_panels(pe.experiments)))) > 0.1 * expected.max()  # it moved
