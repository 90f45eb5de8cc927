"""``nbjax ensemble`` over two local CPU processes (jax.distributed on 127.0.0.1): each process
sets up and linearises its own shots (shot i is process i mod 2's), only the intensities'
reduced system and the losses are summed, and the merged structure factors, their errors and
every shot's refined list equal those of one process refining all the shots."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import gemmi
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu", NBJAX_CACHE_DIR="off")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.pop("XLA_FLAGS", None)
    return env


def _command(listing, outdir, user, *extra):
    return [sys.executable, "-m", "nbjax", "ensemble", str(listing), "-outdir", str(outdir), "-noprogress",
            *user, *extra]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    import jax

    jax.config.update("jax_enable_x64", True)
    from nbjax.ensemble import make_shots

    folder = tmp_path_factory.mktemp("ensemble2")
    truth = make_shots(folder, 5, 11, panels=2, size=(96, 96), renderer="nbjax")
    user = truth.user_args
    return folder, truth, user


def test_two_processes_match_one(data, tmp_path):
    folder, truth, user = data
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            _command(
                truth.list_path,
                tmp_path / "two",
                user,
                "-coordinator",
                f"127.0.0.1:{port}",
                "-num_processes",
                "2",
                "-process_id",
                str(r),
            ),  # fmt: skip
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for r in (0, 1)
    ]
    for p in procs:
        try:
            out, err = p.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the two processes did not finish in 900 s")
        assert p.returncode == 0, err[-3000:]
    single = subprocess.run(
        _command(truth.list_path, tmp_path / "one", user), capture_output=True, text=True, env=_env(), timeout=900
    )
    assert single.returncode == 0, single.stderr[-3000:]
    one = np.array(gemmi.read_mtz_file(str(tmp_path / "one" / "merged.mtz")).array)
    two = np.array(gemmi.read_mtz_file(str(tmp_path / "two" / "merged.mtz")).array)
    assert one.shape == two.shape and one.shape[0] > 50
    np.testing.assert_array_equal(one[:, :3], two[:, :3])
    np.testing.assert_allclose(two[:, 3:], one[:, 3:], rtol=1e-5)  # float32 columns, sums in another order
    a = json.loads((tmp_path / "one" / "ensemble.json").read_text())
    b = json.loads((tmp_path / "two" / "ensemble.json").read_text())
    assert a["steps"] == b["steps"] and a["converged"] and b["converged"]
    np.testing.assert_allclose(b["loss_history"], a["loss_history"], rtol=1e-10)
    assert len(a["shots"]) == len(b["shots"]) == 5  # process 0 writes every shot's values, gathered
    for x, y in zip(a["shots"], b["shots"], strict=True):
        np.testing.assert_allclose([p["value"] for p in y["parameters"]], [p["value"] for p in x["parameters"]],
                                   rtol=1e-8, atol=1e-10)  # fmt: skip
        np.testing.assert_allclose([p["stderr"] for p in y["parameters"]], [p["stderr"] for p in x["parameters"]],
                                   rtol=1e-6)  # fmt: skip
    for k in range(5):  # every shot's refined list, written by the process that refined it
        x = json.loads((tmp_path / "one" / f"shot_{k:05d}.expt").read_text())["crystal"][0]["real_space_a"]
        y = json.loads((tmp_path / "two" / f"shot_{k:05d}.expt").read_text())["crystal"][0]["real_space_a"]
        np.testing.assert_allclose(y, x, rtol=1e-8)
