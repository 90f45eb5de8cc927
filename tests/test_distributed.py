"""Two local CPU processes on 127.0.0.1 (jax.distributed): each renders its share of a batch and
they run one joint fit whose loss, gradient and Fisher matrix are summed over the processes.
Both must give what one process gives for the whole job."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("ignore")
    rank, port, nproc = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    import jax
    if nproc > 1:
        import nbjax.distributed as nd
        nd.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=rank)
    jax.config.update("jax_enable_x64", True)
    import numpy as np, equinox as eqx
    import nbjax, nbjax.fit as nf
    from nbjax.fit import _demo
    from nbjax.distributed import render_share
    start, obs, free, truth = _demo.problem(noise=False)
    obs2 = nf.Observation(image=np.asarray(obs.image) * 0.5 + 1.0, mask=obs.mask, name="half")
    shared = [p for p in free if p.name in ("weight", "wavelength")]
    result = nf.fit(start, [obs, obs2], shared, per_image=[nf.Scale(start=0.07), nf.Background()],
                    distributed=nproc > 1)
    exps = [eqx.tree_at(lambda e: e.beam.wavelengths, start, start.beam.wavelengths * (1 + 0.01 * k)) for k in range(3)]
    mine, images = render_share(nbjax.stack_experiments(exps))
    print(json.dumps({"rank": rank, "names": list(result.names), "values": result.values.tolist(),
                      "stderr": result.stderr.tolist(), "converged": result.converged, "mine": mine.tolist(),
                      "sums": np.asarray(images).sum(axis=(1, 2)).tolist(),
                      "local_models": [m is not None for m in result.model_images]}))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.pop("XLA_FLAGS", None)
    return env


def test_two_processes_match_one():
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(r), port, "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for r in (0, 1)
    ]
    outs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("the two processes did not finish in 600 s")
        assert p.returncode == 0, err[-3000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    single = subprocess.run(
        [sys.executable, "-c", CHILD, "0", port, "1"], capture_output=True, text=True, env=_env(), timeout=600
    )
    assert single.returncode == 0, single.stderr[-3000:]
    one = json.loads(single.stdout.strip().splitlines()[-1])
    for r in outs:
        assert r["converged"] and r["names"] == one["names"]
        np.testing.assert_allclose(r["values"], one["values"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(r["stderr"], one["stderr"], rtol=1e-6)
    # each process rendered its share (images 0, 2 and 1) and computed its own image's model
    assert outs[0]["mine"] == [0, 2] and outs[1]["mine"] == [1]
    np.testing.assert_allclose([outs[0]["sums"][0], outs[1]["sums"][0], outs[0]["sums"][1]], one["sums"], rtol=1e-12)
    assert outs[0]["local_models"] == [True, False] and outs[1]["local_models"] == [False, True]


ENDS = textwrap.dedent("""
    import sys, time
    rank, port = int(sys.argv[1]), sys.argv[2]
    import nbjax.distributed as nd
    from nbjax.cli.main import _exit
    nd.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=rank)
    time.sleep(0.2 if rank == 0 else 4.0)   # process 0, which holds the coordinator, ends first
    _exit(0, process=True)                  # the CLI's own end: os._exit after finishing the job
""")


def test_a_process_ending_first_waits_for_the_others():
    """The CLI ends with ``os._exit``: a job's process 0 (the coordinator) ending first used to close
    the coordinator's socket under the others, which JAX aborts (SIGABRT, a flaky two-process CI
    test); ``nbjax.distributed.finish`` makes every process wait at the shutdown barrier."""
    port = str(_free_port())
    procs = [
        subprocess.Popen([sys.executable, "-c", ENDS, str(r), port], stderr=subprocess.PIPE, text=True, env=_env())
        for r in (0, 1)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
