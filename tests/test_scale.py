"""Batches and devices: ``render_batch`` against separate renders, and tiles or images split over
4 (fake CPU) devices against one device.  The device tests run in a subprocess started with
XLA_FLAGS=--xla_force_host_platform_device_count=4 (the flag must be set before JAX starts).
Measured on the development machine: all of these agree bit for bit; the tests allow 1e-13 of
the image maximum in case another CPU's compiler fuses the sharded program differently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import equinox as eqx
import numpy as np
import pytest

import nbjax
from nbjax.errors import NBError

ROOT = Path(__file__).resolve().parent.parent
ARGS = [
    "-cell",
    "70",
    "80",
    "90",
    "75",
    "85",
    "95",
    "-default_F",
    "100",
    "-N",
    "5",
    "-detpixels",
    "48",
    "-misset",
    "10",
    "20",
    "30",
    "-phi",
    "0",
    "-osc",
    "2",
    "-phisteps",
    "3",
    "-oversample",
    "2",
]


def _variants(exp, n):
    """n Experiments of one static shape: different wavelengths, orientations and distances."""
    out = []
    for k in range(n):
        e = eqx.tree_at(lambda e: e.beam.wavelengths, exp, exp.beam.wavelengths * (1 + 0.01 * k))
        e = eqx.tree_at(lambda e: e.crystal.phi, e, e.crystal.phi + 0.01 * k)
        e = eqx.tree_at(lambda e: e.detector.distance, e, e.detector.distance * (1 + 0.02 * k))
        out.append(e)
    return out


@pytest.mark.parametrize("physical", [False, True])
def test_render_batch_equals_separate_renders(physical):
    exp = nbjax.experiment_from_args(ARGS, physical=physical) if physical else _quiet(ARGS)
    exps = _variants(exp, 5)
    batch = np.asarray(nbjax.render_batch(nbjax.stack_experiments(exps)))
    separate = np.stack([np.asarray(nbjax.render(e)) for e in exps])
    assert batch.shape == (5, 48, 48)
    assert np.max(np.abs(batch - separate)) <= 1e-12 * separate.max()
    assert np.ptp(separate.reshape(5, -1).sum(axis=1)) > 0  # the variants really differ


def _quiet(args):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nbjax.experiment_from_args(args)


def test_stack_refuses_different_static_shapes():
    a = _quiet(ARGS)
    b = _quiet(ARGS[:-2] + ["-oversample", "1"])
    with pytest.raises(ValueError, match="static shape"):
        nbjax.stack_experiments([a, b])


def test_devices_flag_refuses_more_than_available(tmp_path):
    import io

    from nbjax.cli.main import run

    with pytest.raises(NBError, match="-devices: 64 requested"):
        run(
            ARGS
            + [
                "-devices",
                "64",
                "-floatfile",
                str(tmp_path / "f.bin"),
                "-nonoise",
                "-nopgm",
                "-intfile",
                str(tmp_path / "i.img"),
            ],
            out=io.StringIO(),
            err=io.StringIO(),
        )


CHILD = textwrap.dedent("""
    import io, json, os, sys, warnings
    import jax
    jax.config.update("jax_enable_x64", True)
    import numpy as np, equinox as eqx
    import nbjax
    from nbjax.cli.main import run
    warnings.simplefilter("ignore")
    args = json.loads(sys.argv[1])
    out = {"devices": len(jax.devices())}
    for physical in (False, True):
        exp = nbjax.experiment_from_args(args, physical=physical)
        one = np.asarray(nbjax.render(exp, tile=100))
        four = np.asarray(nbjax.render(exp, tile=100, devices=4))
        out[f"tiles_{physical}"] = [float(np.max(np.abs(one - four))), float(one.max())]
    exp = nbjax.experiment_from_args(args)
    exps = [eqx.tree_at(lambda e: e.beam.wavelengths, exp, exp.beam.wavelengths * (1 + 0.01 * k)) for k in range(6)]
    st = nbjax.stack_experiments(exps)
    b1, b4 = np.asarray(nbjax.render_batch(st)), np.asarray(nbjax.render_batch(st, devices=4))
    out["batch"] = [float(np.max(np.abs(b1 - b4))), float(b1.max()), list(b4.shape)]
    folder = sys.argv[2]
    for n in ("1", "4"):
        code = run(args + ["-devices", n, "-floatfile", os.path.join(folder, f"f{n}.bin"), "-nonoise", "-nopgm",
                           "-noprogress", "-intfile", os.path.join(folder, f"i{n}.img")],
                   out=io.StringIO(), err=io.StringIO())
        assert code == 0
    f1, f4 = (np.fromfile(os.path.join(folder, f"f{n}.bin"), dtype="<f4") for n in ("1", "4"))
    out["cli"] = [float(np.max(np.abs(f1 - f4))), float(f1.max())]
    print(json.dumps(out))
""")


def test_four_devices_give_the_one_device_images(tmp_path):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(ARGS), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["devices"] == 4
    for key in ("tiles_False", "tiles_True", "cli"):
        diff, peak = r[key]
        assert peak > 0 and diff <= 1e-13 * peak, (key, r[key])
    diff, peak, shape = r["batch"]
    assert shape == [6, 48, 48] and peak > 0 and diff <= 1e-13 * peak
