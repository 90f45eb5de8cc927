"""``nbjax fit -shots LIST``: independent shoebox fits of a list of stills, one compilation for
the whole list in one process, and the shots dealt out over a jax.distributed job (two processes
on 127.0.0.1) with the same results as one process."""

from __future__ import annotations

import json
import subprocess
import sys

import expt_fixtures as fx
import numpy as np
import pytest
from test_distributed import _env, _free_port

from nbjax import panels as P
from nbjax.io import expt as E

FLAGS = ["-default_F", "100", "-N", "8", "-fluence", "1e27"]
FIT = ["-free", "misset,scale,background_planes", "-steps", "4", "-noprogress"]


def _shots(folder, n=3):
    """A tilted-panel still list: the crystal turned 0.05 deg about x, Poisson draws of seeds
    1..n, and -water for a background."""
    start = fx.tilted_panel()
    fx.write(start, folder / "start.expt")
    truth = json.loads(json.dumps(start))
    r = fx._rot([1, 0, 0], 0.05)
    for key in ("real_space_a", "real_space_b", "real_space_c"):
        truth["crystal"][0][key] = list(r @ np.asarray(start["crystal"][0][key]))
    experiment = E.ExperimentList("truth", truth).experiment(0)
    image = np.asarray(P.render_panels(P.panel_experiments(experiment, FLAGS + ["-water", "0.5"]).experiments))
    lines = []
    for k in range(n):
        np.save(folder / f"s{k}.npy", np.random.default_rng(k + 1).poisson(image).astype(np.float32))
        lines.append(f"start.expt s{k}.npy")
    (folder / "shots.txt").write_text("# the list\n" + "\n".join(lines) + "\n")


def _fit(args, folder, monkeypatch, capsys):
    from nbjax.cli.main import main

    monkeypatch.chdir(folder)
    monkeypatch.setenv("NBJAX_CACHE_DIR", "off")
    with pytest.raises(SystemExit) as info:
        main(["fit", *args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_a_list_of_stills_shares_one_compilation(tmp_path, monkeypatch, capsys):
    from nbjax.fit import _engine

    _shots(tmp_path)
    (tmp_path / "out").mkdir()
    before = _engine.make_passes.cache_info()
    code, out, err = _fit(["-shots", "shots.txt", *FIT, "-outdir", "out", *FLAGS], tmp_path, monkeypatch, capsys)
    assert code in (0, 3), err
    after = _engine.make_passes.cache_info()
    assert after.misses - before.misses == 1 and after.hits - before.hits == 2  # three fits, one compilation
    summary = json.loads((tmp_path / "out" / "shots_p0.json").read_text())
    assert [s["shot"] for s in summary] == [0, 1, 2]
    for k in range(3):
        doc = json.loads((tmp_path / "out" / f"shot_{k:05d}" / "fit.json").read_text())
        names = [p["name"] for p in doc["parameters"]]
        assert doc["shoeboxes"]["count"] > 0
        assert len([n for n in names if n.startswith("plane[")]) % 64 == 0  # planes rounded up
        value = {p["name"]: p for p in doc["parameters"]}["misset.x"]
        assert abs(value["value"] - 0.05) < 4 * value["stderr"]  # the turn is found in 4 steps


def test_bad_shot_lists(tmp_path, monkeypatch, capsys):
    _shots(tmp_path, n=1)
    (tmp_path / "bad.txt").write_text("start.expt s0.npy 0 extra\n")
    (tmp_path / "none.txt").write_text("# nothing\n")
    (tmp_path / "missing.txt").write_text("start.expt gone.npy\n")
    cases = [
        (["-shots", "bad.txt"], "bad.txt line 1: expected 'EXPT IMAGE [INDEX]'"),
        (["-shots", "none.txt"], "none.txt: no shots"),
        (["-shots", "missing.txt"], "shot 0: no image"),
        (["-shots", "shots.txt", "-process_id", "1"], "go together"),
        (["-shots", "shots.txt", "-coordinator", "x:1", "-num_processes", "2", "-process_id", "2"], "not below"),
    ]
    for args, message in cases:
        code, out, err = _fit([*args, *FIT, *FLAGS], tmp_path, monkeypatch, capsys)
        assert code != 0 and message in err and err.count("\n") == 1, (args, err)
    assert not list(tmp_path.glob("shot_*")) and not list(tmp_path.glob("shots_p*.json"))


def test_shots_over_two_processes_equal_one(tmp_path):
    """Shot k is process k mod 2's; every shot's fit equals the one-process fit of it."""
    _shots(tmp_path, n=3)
    port = str(_free_port())
    command = [sys.executable, "-m", "nbjax", "fit", "-shots", "shots.txt", *FIT, *FLAGS]
    env = dict(_env(), NBJAX_CACHE_DIR="off", NBJAX_HOST_DEVICES="1")
    for folder in ("two", "one"):
        (tmp_path / folder).mkdir()
    procs = [
        subprocess.Popen(
            [*command, "-outdir", "two", "-coordinator", f"127.0.0.1:{port}", "-num_processes", "2", "-process_id", r],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ("0", "1")
    ]
    single = subprocess.run(
        [*command, "-outdir", "one"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode in (0, 3), err[-3000:]
    assert single.returncode in (0, 3), single.stderr[-3000:]
    two = {s["shot"]: s for r in (0, 1) for s in json.loads((tmp_path / "two" / f"shots_p{r}.json").read_text())}
    assert sorted(two) == [0, 1, 2]
    assert [s["shot"] for s in json.loads((tmp_path / "two" / "shots_p1.json").read_text())] == [1]
    for k in range(3):
        a = json.loads((tmp_path / "two" / f"shot_{k:05d}" / "fit.json").read_text())["parameters"]
        b = json.loads((tmp_path / "one" / f"shot_{k:05d}" / "fit.json").read_text())["parameters"]
        np.testing.assert_allclose([p["value"] for p in a], [p["value"] for p in b], rtol=1e-9, atol=1e-12)
