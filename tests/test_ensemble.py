"""The ensemble refinement: structure factors shared by many stills, each shot's own values.

- The reflections' P1 grid against gemmi's asymmetric unit (every index in a box).
- The Schur-complement step against a dense solve of the whole damped system (float64).
- Recovery from a truth rendered with a known table (``make_shots``): F correlation and pulls,
  the shots' orientations within their error bars.
- A run stopped and resumed from its checkpoint ends where an uninterrupted run ends.
- merged.mtz holds the refined values; the command's bad inputs fail with one line and write
  nothing.
(Two processes = one: ``test_ensemble_distributed.py``.)
"""

from __future__ import annotations

import json
import os

import gemmi
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nbjax.ensemble import _refine, make_shots, refine_ensemble, setup_refinement, unique_reflections
from nbjax.ensemble._truth import compare

FREE = ["misset", "scale", "background_planes"]


@pytest.mark.parametrize("anomalous", [False, True])
def test_reflection_grid_is_gemmis_asymmetric_unit(anomalous):
    """Every index of a box maps to the reflection gemmi puts it on (``to_asu``), the
    systematic absences and indices beyond dmin to none; Friedel mates to one number, or to
    F(+) and F(-) apart."""
    cell = (52.0, 52.0, 78.0, 90.0, 90.0, 90.0)
    refl = unique_reflections("P 43 21 2", cell, 6.0, anomalous=anomalous)
    sg = gemmi.SpaceGroup("P 43 21 2")
    ops, asu, uc = sg.operations(), gemmi.ReciprocalAsu(sg), gemmi.UnitCell(*cell)
    n = refl.count // 2 if anomalous else refl.count
    number = {tuple(int(x) for x in h): j for j, h in enumerate(refl.hkl[:n])}
    checked = 0
    for h in range(-9, 10):
        for k in range(-9, 10):
            for l in range(-14, 15):
                hkl = [h, k, l]
                inside = all(lo <= x <= hi for x, lo, hi in zip(hkl, refl.lo, refl.hi, strict=True))
                got = int(refl.index[h - refl.lo[0], k - refl.lo[1], l - refl.lo[2]]) if inside else -1
                if hkl == [0, 0, 0] or uc.calculate_d(hkl) < 6.0 or ops.is_systematically_absent(hkl):
                    assert got == -1, hkl
                    continue
                mate, isym = asu.to_asu(hkl, ops)
                want = number[tuple(mate)]
                if anomalous and isym % 2 == 0 and not ops.is_reflection_centric(hkl):  # odd isym: (+)
                    want += n
                assert got == want, (hkl, got, want)
                checked += 1
    assert checked > 500
    F = np.arange(refl.count) + 1.0
    grid = np.asarray(refl.grid(F).grid)
    assert np.array_equal(grid, np.where(refl.index >= 0, F[np.maximum(refl.index, 0)], 0.0))


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Ten nbjax-rendered stills of a known table (two 128 x 128 panels each)."""
    jax.config.update("jax_enable_x64", True)
    from nbjax.cli import ensemble as cli

    folder = tmp_path_factory.mktemp("ensemble")
    truth = make_shots(folder, 10, 5, panels=2, size=(128, 128), renderer="nbjax")
    inputs = cli._inputs(cli.read_list(truth.list_path), 0, {})
    reflections = cli._reflections(inputs, {})
    user = truth.user_args
    return truth, inputs, reflections, user


@pytest.mark.parametrize("shared", [(), ("panel_shifts", "panel_rotations", "spectrum_shift")])
def test_schur_step_equals_the_dense_damped_solve(shots, shared):
    """The step (per-shot elimination, the reduced system of the intensities and the shared
    values with their gauge terms, back-substitution) equals the dense solve of the whole damped
    system."""
    truth, inputs, reflections, user = shots
    F0 = np.full(reflections.count, 100.0)
    refinement, _ = setup_refinement(inputs[:3], reflections, F0, user, FREE, shared=shared)
    assert refinement.k == 3 * 2 * 2 + 1 if shared else refinement.k == 0
    assert len(refinement.shared_gauges) == (1 if shared else 0)  # the detector's turn about the beam
    state = refinement.start(F0)
    state.gamma = state.gamma + np.random.default_rng(0).normal(0.0, 1e-3, refinement.k)  # away from the start
    lins = refinement.linearise(state.z, state.thetas)
    lam = 0.05
    S, r, dq, parts = refinement.reduced(lins, lam)
    dz = refinement.solve(S, r, dq, lam)
    d_own = [_refine._own_step(lin, solver, dz[lin.slots]) for lin, solver in zip(lins, parts, strict=True)]

    # the dense system: [active u, shared values | shot 0's own | shot 1's own | ...]
    a = np.flatnonzero(refinement.active_z)
    nu = int(np.count_nonzero(refinement.active))
    where = {int(j): i for i, j in enumerate(a)}
    sizes = [lin.H_own.shape[0] for lin in lins]
    n = a.size + sum(sizes)
    H, g = np.zeros((n, n)), np.zeros(n)
    at = a.size
    for lin, m in zip(lins, sizes, strict=True):
        q = np.array([where[int(j)] for j in lin.slots])
        o = np.arange(at, at + m)
        Hoo = lin.H_own.toarray()
        d = np.diag(Hoo)
        H[np.ix_(o, o)] += Hoo + np.diag(lam * np.where(d > 0, d, 0.0) + (d <= 0))
        H[np.ix_(o, q)] += lin.H_oq.toarray()
        H[np.ix_(q, o)] += lin.H_oq.toarray().T
        H[np.ix_(q, q)] += lin.H_qq.toarray()
        g[o] += lin.g_own
        g[q] += lin.g_q
        at += m
    damping = lam * np.diag(np.maximum(dq[a], _refine.DAMPING_FLOOR * np.median(dq[a])))
    Sa = S[np.ix_(a, a)]
    mu = float(np.mean(np.diag(Sa + damping)))  # the gauge terms' weight, as the step takes it
    H[: a.size, : a.size] += damping
    H[:nu, :nu] = _refine._add_gauge(H[:nu, :nu], _refine.components(Sa[:nu, :nu])[1], np.diag(Sa)[:nu], mu)
    for c in refinement.shared_gauges:
        H[nu : a.size, nu : a.size] += mu * np.outer(c, c)
    step = np.linalg.solve(H, -g)
    np.testing.assert_allclose(dz[a], step[: a.size], rtol=1e-7, atol=1e-9 * np.abs(step).max())
    at = a.size
    for d_s, m in zip(d_own, sizes, strict=True):
        np.testing.assert_allclose(d_s, step[at : at + m], rtol=1e-6, atol=1e-8 * np.abs(step[at : at + m]).max())
        at += m


@pytest.fixture(scope="module")
def refined(shots, tmp_path_factory):
    truth, inputs, reflections, user = shots
    folder = tmp_path_factory.mktemp("checkpoint")
    result = refine_ensemble(inputs, reflections, 100.0, user, FREE, checkpoint_dir=str(folder))
    return result, folder


def test_ensemble_recovers_the_truth(shots, refined):
    """From F = 100 everywhere: F of the reflections seen in >= 3 shots correlate with the truth
    (>= 0.98 from these ten small shots: 0.986 measured; the issue's 0.99 over 200 C-rendered
    shots is ``scripts/ensemble-calibration``'s) and their pulls are calibrated; every shot's
    misset is within 3.5 sigma."""
    truth, inputs, reflections, user = shots
    result, _ = refined
    assert result.converged, result.message
    stats = compare(result, truth.table.hkl, truth.table.F, truth.scales, truth.missets_deg)
    assert stats["reflections_compared"] >= 60, stats
    assert stats["F_correlation"] >= 0.98, stats  # 10 shots; >= 0.99 on 200 C shots: scripts/ensemble-calibration
    assert 0.75 <= stats["F_pull_std"] <= 1.3, stats
    assert abs(stats["F_pull_mean"]) < 0.35, stats
    for axis in ("misset.x", "misset.y", "misset.z"):
        pulls = [(s.value(axis) - truth.missets_deg[i][("xyz".index(axis[-1]))]) / s.error(axis)
                 for i, s in zip(result.shot_indices, result.shots, strict=True)]  # fmt: skip
        assert np.all(np.abs(pulls) < 3.5), (axis, pulls)
    # the model fits every panel: Pearson residuals (d - m) / sqrt(m) with mean ~0 and rms ~1
    residuals = result.table["residuals"]  # (shots, panels, 3): pixels, mean, rms
    assert residuals.shape[:2] == (len(inputs), 2) and np.all(residuals[:, :, 0] > 100)
    assert np.all(np.abs(residuals[:, :, 1]) < 0.2), residuals
    assert np.all((residuals[:, :, 2] > 0.85) & (residuals[:, :, 2] < 1.2)), residuals
    # the refined lists carry the refined crystal
    doc = result.shots[0].refined_expt
    assert not np.allclose(doc["crystal"][0]["real_space_a"], inputs[0].elist.raw["crystal"][0]["real_space_a"])


def test_resumed_run_ends_where_an_uninterrupted_one_ends(shots, refined, tmp_path):
    """Stopped after two steps (its checkpoint written every step), then resumed: the same
    structure factors and shot values as the run that was not stopped."""
    truth, inputs, reflections, user = shots
    full, _ = refined
    first = refine_ensemble(inputs, reflections, 100.0, user, FREE, checkpoint_dir=str(tmp_path), stop_after=2)
    assert first.steps == 2 and not first.converged
    assert os.path.exists(tmp_path / "state.p0.npz")
    resumed = refine_ensemble(inputs, reflections, 100.0, user, FREE, checkpoint_dir=str(tmp_path), resume=True)
    assert resumed.converged and resumed.steps == full.steps
    np.testing.assert_allclose(resumed.F, full.F, rtol=1e-9)
    np.testing.assert_allclose(resumed.loss_history, full.loss_history, rtol=1e-12)
    for a, b in zip(resumed.shots, full.shots, strict=True):
        np.testing.assert_allclose(a.values, b.values, rtol=1e-9, atol=1e-12)
    # a checkpoint of another refinement is refused
    with pytest.raises(Exception, match="another refinement"):
        refine_ensemble(inputs[:5], reflections, 100.0, user, FREE, checkpoint_dir=str(tmp_path), resume=True)


def test_merged_mtz_holds_the_refined_values(shots, refined):
    from nbjax.ensemble import _outputs

    truth, inputs, reflections, user = shots
    result, _ = refined
    data = _outputs.merged_mtz_bytes(result, (52.0, 52.0, 78.0, 90.0, 90.0, 90.0))
    path = os.path.join(os.path.dirname(truth.list_path), "merged.mtz")
    with open(path, "wb") as handle:
        handle.write(data)
    mtz = gemmi.read_mtz_file(path)
    assert [c.label for c in mtz.columns] == ["H", "K", "L", "F", "SIGF", "I", "SIGI", "NSHOTS"]
    assert mtz.spacegroup.xhm() == "P 43 21 2"
    rows = np.array(mtz.array)
    seen = result.shots_seen > 0
    assert rows.shape[0] == int(np.count_nonzero(seen))
    np.testing.assert_allclose(rows[:, 3], result.F[seen], rtol=1e-6)
    np.testing.assert_allclose(rows[:, 4], result.sigma_F[seen], rtol=1e-6)
    np.testing.assert_allclose(rows[:, 5], result.F[seen] ** 2, rtol=1e-5)
    assert np.array_equal(rows[:, :3].astype(int), reflections.hkl[seen])


def _run(argv, capsys, monkeypatch):
    from nbjax.cli.main import main

    monkeypatch.setenv("NBJAX_CACHE_DIR", "off")
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


@pytest.mark.parametrize(
    "line,extra,message",
    [
        (None, [], "cannot read"),
        ("only_one_word", [], "expected 'EXPT IMAGE [SPECTRUM] [MASK]'"),
        ("missing.expt shot.npy", [], "no experiment list"),
        ("GOOD", ["-steps", "0"], "-steps: must be at least 1"),
        ("GOOD", ["-background_model", "sphere"], "-background_model"),
        ("GOOD", ["-shoebox", "x"], "-shoebox: 'x' is not a whole number"),
        ("GOOD", ["-free", "misset,colour"], "unknown fit parameter 'colour'"),
        ("GOOD", ["-dmin", "-1"], "-dmin: must be at least"),
        ("GOOD", ["-shared", "background"], "only a parameter of the experiment"),
        ("GOOD", ["-shared", "misset"], "cannot be both per shot (-free) and shared"),
        ("GOOD", ["-shared", "panel_shifts", "-panel_groups", "0,2"], "-panel_groups gives 2 group numbers"),
        ("GOOD", ["-shared", "panel_shifts", "-panel_groups", "0,x"], "-panel_groups: '0,x' is not a list"),
        ("GOOD", ["-restrain", "misset"], "-restrain: 'misset' is not NAME=SIGMA"),
        ("GOOD", ["-restrain", "cell=0.1"], "-restrain cell: not a per-shot parameter"),
        ("GOOD", ["-restrain", "misset=-1"], "the sigma must be positive"),
    ],
)
def test_bad_inputs_fail_with_one_line_and_write_nothing(shots, tmp_path, capsys, monkeypatch, line, extra, message):
    truth, *_ = shots
    listing = tmp_path / "shots.lst"
    if line is not None:
        good = open(truth.list_path).read().splitlines()[0]
        folder = os.path.dirname(truth.list_path)
        good = " ".join(os.path.join(folder, w) for w in good.split())
        listing.write_text((good if line == "GOOD" else line) + "\n")
    out = tmp_path / "out"
    code, _, err = _run(["ensemble", str(listing), "-outdir", str(out), "-noprogress", *extra], capsys, monkeypatch)
    assert code != 0
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
    assert not (out / "merged.mtz").exists() and not (out / "ensemble.json").exists()


def test_a_panel_without_usable_pixels_costs_nothing(shots):
    """A panel with no usable pixel (no spot there, or all masked) is one tile of invalid
    pixels: the loss stays finite and the refinement goes on (it used to count pixel (0, 0)
    with no background: an infinite Poisson loss)."""
    from nbjax.ensemble import Input
    from nbjax.fit._engine import pixel_tiles

    fpix, spix, valid = pixel_tiles(np.zeros((4, 5), bool), 8)
    assert fpix.shape == spix.shape == valid.shape == (1, 8) and not valid.any()
    truth, inputs, reflections, user = shots
    data, masks = inputs[0].load()
    masks = [np.asarray(m).copy() for m in masks]
    masks[1][:] = False
    first = Input(inputs[0].name, inputs[0].elist, 0, data, masks, inputs[0].args)
    result = refine_ensemble([first, *inputs[1:3]], reflections, 100.0, user, FREE, max_steps=3)
    assert np.all(np.isfinite(result.loss_history)) and result.loss_history[-1] < result.loss_history[0]
    assert result.table["residuals"][0, 1, 0] == 0  # no pixel fitted on the masked panel


def test_wilson_prior_holds_weak_reflections(shots, refined):
    """With the Wilson prior no error bar grows (a prior adds information; within 2 %: the
    two optima differ a little), the weakly seen reflections' shrink most; F still correlates
    with the truth."""
    truth, inputs, reflections, user = shots
    plain, _ = refined
    wilson = refine_ensemble(inputs, reflections, 100.0, user, FREE, prior="wilson")
    assert wilson.converged, wilson.message
    seen = plain.shots_seen > 0
    ratio = wilson.sigma_F[seen] / plain.sigma_F[seen] * plain.F[seen] / wilson.F[seen]  # sigma_u ratio
    assert np.all(ratio <= 1.02), ratio.max()  # at the same point it could only shrink; the optima differ a little
    weak = np.argsort(plain.sigma_F[seen] / plain.F[seen])
    assert np.median(ratio[weak[-20:]]) < np.median(ratio[weak[:20]]) - 0.05
    stats = compare(wilson, truth.table.hkl, truth.table.F)
    assert stats["F_correlation"] >= 0.98, stats
    with pytest.raises(Exception, match="unknown prior"):
        refine_ensemble(inputs[:2], reflections, 100.0, user, FREE, prior="flat")


def test_summary_json_lists_every_shot(shots, refined):
    from nbjax.ensemble import _outputs

    truth, inputs, reflections, user = shots
    result, _ = refined
    doc = json.loads(_outputs.summary_json(result, [s.name for s in inputs]))
    assert len(doc["shots"]) == len(inputs) and doc["converged"] is True
    names = [p["name"] for p in doc["shots"][0]["parameters"]]
    assert names == ["misset.x", "misset.y", "misset.z", "scale"]


# ---- values all shots share: detector metrology, a spectrum calibration


@pytest.fixture(scope="module")
def miscalibrated(tmp_path_factory):
    """Ten stills whose truth has its panels moved and turned away from the .expt's (the demo's
    ``DEMO_MISCALIBRATION``), refined with the panels' shifts and rotations shared."""
    jax.config.update("jax_enable_x64", True)
    from nbjax.cli import ensemble as cli

    folder = tmp_path_factory.mktemp("miscalibrated")
    off = cli.DEMO_MISCALIBRATION
    moved = {key: off[key] for key in ("panel_shift_mm", "panel_rotation_mrad")}
    truth = make_shots(folder, 10, 7, panels=2, size=(128, 128), renderer="nbjax", **moved)
    inputs = cli._inputs(cli.read_list(truth.list_path), 0, {})
    reflections = cli._reflections(inputs, {})
    user = truth.user_args
    result = refine_ensemble(inputs, reflections, 100.0, user, FREE, shared=["panel_shifts", "panel_rotations"])
    return truth, inputs, reflections, user, result


def test_shared_detector_is_recovered(miscalibrated):
    """The panels' shifts and turns are found within their error bars, the truth brought into
    the refinement's gauge (the detector and every crystal turned about the beam change no
    pixel: the panels' summed turn about the beam is held at its start); the crystals' missets,
    in the same gauge, within theirs; F correlate with the truth; every shot's refined list
    carries the refined panels."""
    from nbjax.ensemble._synthetic import moved_detector
    from nbjax.io.expt import ExperimentList

    truth, inputs, reflections, user, result = miscalibrated
    assert result.converged, result.message
    sh = result.shared
    assert len(sh["names"]) == 12 and sh["names"][0] == "panel_shift.x@P0" and sh["names"][-1] == "panel_rotation.z@P1"
    want, missets = result.sharing.in_gauge(
        np.concatenate([truth.panel_shift_mm.ravel(), truth.panel_rotation_mrad.ravel()]), truth.missets_deg
    )
    pulls = (sh["value"] - want) / sh["stderr"]
    assert np.all(np.abs(pulls) < 3.5), dict(zip(sh["names"], pulls.round(2), strict=True))
    assert np.all(sh["stderr"][:6] < 0.01) and np.all(sh["stderr"][[8, 11]] < 0.1)  # mm; mrad about the beam
    held = result.shared_value("panel_rotation.z@P0") + result.shared_value("panel_rotation.z@P1")
    assert abs(held) < 0.01 * result.shared_error("panel_rotation.z@P0")  # held to first order (polarization)
    stats = compare(result, truth.table.hkl, truth.table.F, truth.scales, missets)
    assert stats["F_correlation"] >= 0.98, stats
    for axis in ("misset.x", "misset.y", "misset.z"):
        assert stats[f"{axis}_within_3_sigma"] >= 0.9, stats
    panels = ExperimentList("refined", result.shots[0].refined_expt).experiment(0).panels
    detector = inputs[0].elist.raw["detector"][0]
    moved = moved_detector(detector, sh["value"][:6].reshape(2, 3), sh["value"][6:].reshape(2, 3))["panels"]
    for panel, m in zip(panels, moved, strict=True):
        np.testing.assert_allclose(panel.origin, m["origin"], atol=1e-9)
        np.testing.assert_allclose(panel.fast, m["fast_axis"], atol=1e-9)


def test_a_panel_group_moves_as_one_body(shots):
    """``-panel_groups 0,0``: one shift for both panels (labelled by the group), found at 0 for
    a truth whose panels sit where the lists say; a group's rotation turns its panels about the
    group's centre, as the whole group turned rigidly (the hierarchical fixture's two groups)."""
    import expt_fixtures as fx

    from nbjax import panels as P
    from nbjax.ensemble._ensemble import _pivoted
    from nbjax.fit._parameters import PanelRotation
    from nbjax.physics.rotations import rotate_xyz

    truth, inputs, reflections, user = shots
    result = refine_ensemble(inputs[:4], reflections, 100.0, user, FREE, shared=["panel_shifts"], panel_groups=[0, 0])
    assert result.shared["names"] == ("panel_shift.x@group0", "panel_shift.y@group0", "panel_shift.z@group0")
    assert np.all(np.abs(result.shared["value"]) < 4 * result.shared["stderr"]), result.shared

    from nbjax.io.expt import ExperimentList

    experiment = ExperimentList("fixture", fx.hierarchical_8panel()).experiment(0)
    experiments = P.panel_experiments(experiment, ["-N", "8", "-default_F", "100"]).experiments
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    copies = _pivoted(PanelRotation(scope="global_panel"), experiments, groups)
    assert isinstance(copies, tuple) and len(copies) == 8
    turn = {0: np.array([3.0, -2.0, 5.0]), 1: np.array([-1.0, 4.0, 2.0])}  # mrad
    for g in (0, 1):
        members = np.flatnonzero(groups == g)
        centre = np.mean([np.asarray(experiments[k].detector.pix0) + 0.5 * float(experiments[k].detector.pixel_size)
                          * (experiments[k].detector.fpixels * np.asarray(experiments[k].detector.fdet)
                             + experiments[k].detector.spixels * np.asarray(experiments[k].detector.sdet))
                          for k in members], axis=0)  # fmt: skip
        r = turn[g] * 1e-3
        for k in members:
            det = experiments[k].detector
            got = copies[k].apply(experiments[k], jnp.asarray(turn[g]), experiments[k]).detector
            np.testing.assert_allclose(got.pix0, centre + rotate_xyz(np.asarray(det.pix0) - centre, *r), atol=1e-13)
            np.testing.assert_allclose(got.fdet, rotate_xyz(np.asarray(det.fdet), *r), atol=1e-13)


def test_gradient_pass_and_lbfgs(shots):
    """The one-pass gradient of the whole problem (``Refinement.gradient``, what L-BFGS uses)
    equals the gradient of the Fisher pass (``linearise``: sum of the shots' g_q, and their
    g_own), the shared values included; optax's L-BFGS from it lowers the loss at every
    iteration."""
    truth, inputs, reflections, user = shots
    F0 = np.full(reflections.count, 100.0)
    shared = ["panel_shifts"]
    refinement, _ = setup_refinement(inputs[:3], reflections, F0, user, FREE, shared=shared)
    state = refinement.start(F0)
    z = state.z + np.random.default_rng(1).normal(0.0, 0.05, state.z.size)
    L, gz, g_own = refinement.gradient(z, state.thetas)
    lins = refinement.linearise(z, state.thetas)
    _, r, _, _ = refinement.reduced(lins, 0.0, eliminate=False)
    np.testing.assert_allclose(L, sum(lin.loss for lin in lins), rtol=1e-12)
    np.testing.assert_allclose(gz, r, rtol=1e-8, atol=1e-8 * np.abs(r).max())
    for g, lin in zip(g_own, lins, strict=True):
        np.testing.assert_allclose(g, lin.g_own, rtol=1e-8, atol=1e-8 * np.abs(lin.g_own).max())
    refinement.method = "lbfgs"
    result = refinement.run(state, 6)
    assert result.step == 6 and np.all(np.diff(result.history) <= 0) and result.history[-1] < result.history[0] - 100


def test_restrained_missets_stay_near_their_start(shots):
    """``restrain={"misset": sigma}``: a Gaussian prior centred at each shot's start (0).  A
    tight one (1e-4 deg) holds every misset there; a loose one (0.01 deg, about the missets'
    own error bars) pulls them towards it as a whole and shrinks every error bar (a prior adds
    information)."""
    truth, inputs, reflections, user = shots
    plain = refine_ensemble(inputs[:4], reflections, 100.0, user, FREE)
    tight = refine_ensemble(inputs[:4], reflections, 100.0, user, FREE, restrain={"misset": 1e-4})
    loose = refine_ensemble(inputs[:4], reflections, 100.0, user, FREE, restrain={"misset": 0.01})
    axes = ("misset.x", "misset.y", "misset.z")
    m0 = np.array([[a.value(x) for x in axes] for a in plain.shots])
    e0 = np.array([[a.error(x) for x in axes] for a in plain.shots])
    held = np.array([[b.value(x) for x in axes] for b in tight.shots])
    pulled = np.array([[c.value(x) for x in axes] for c in loose.shots])
    e1 = np.array([[c.error(x) for x in axes] for c in loose.shots])
    assert np.all(np.abs(held) < 3e-4) and np.median(np.abs(m0)) > 10 * np.max(np.abs(held)), (m0, held)
    assert np.sum(pulled**2) < 0.8 * np.sum(m0**2), (m0, pulled)
    assert np.all(e1 < e0), (e0, e1)


def test_command_shows_progress_and_writes_every_output(shots, tmp_path, capsys, monkeypatch):
    """``nbjax ensemble LIST`` without -noprogress: a set-up line per shot (its shoeboxes and
    reflections) and a line per step with the loss and the time left; every output written."""
    truth, inputs, reflections, user = shots
    folder = os.path.dirname(truth.list_path)
    listing = tmp_path / "three.lst"
    lines = open(truth.list_path).read().splitlines()[:3]
    listing.write_text("".join(" ".join(os.path.join(folder, w) for w in line.split()) + "\n" for line in lines))
    out = tmp_path / "out"
    code, text, err = _run(["ensemble", str(listing), "-outdir", str(out), "-steps", "2", *user], capsys, monkeypatch)
    assert code in (0, 3), err
    setup = [x for x in err.splitlines() if "ensemble set-up" in x]
    assert len(setup) == 3 and all(" shoeboxes, " in x and x.endswith(" reflections") for x in setup), err
    steps = [x for x in err.splitlines() if "ensemble step" in x]
    assert len(steps) == 2 and all("s/step, at most" in x for x in steps), err
    for name in ("merged.mtz", "ensemble.json", "ensemble_report.png", "shot_00000.expt", "shot_00002.expt"):
        assert (out / name).exists(), name
