"""The jaxtyping shapes on the kernel, samples, model and physics signatures hold at run time:
a subprocess imports those modules under jaxtyping's import hook with beartype (so every
annotated function and Module checks its arguments' and results' shapes and dtypes) and renders
C-compatible and physical images with several layers, sub-pixels, sources, phi steps and mosaic
domains, a -printout trace and a fit pass."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("beartype")
ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import warnings
warnings.simplefilter("ignore")
import jax
jax.config.update("jax_enable_x64", True)
from jaxtyping import install_import_hook
HOOKED = ["nbjax.strategy", "nbjax.samples", "nbjax.accumulation", "nbjax.ccompat", "nbjax.kernel", "nbjax.physics"]
with install_import_hook(HOOKED, "beartype.beartype"):
    import nbjax.strategy, nbjax.samples, nbjax.accumulation, nbjax.kernel
    import nbjax.ccompat.accumulation, nbjax.ccompat.trace
    import nbjax.physics.lattice, nbjax.physics.detector_response, nbjax.physics.structure_factors
import numpy as np, jax.numpy as jnp
import nbjax
args = ["-cell", "70", "80", "90", "75", "85", "95", "-default_F", "100", "-N", "4", "-detpixels", "12",
        "-oversample", "2", "-phi", "-1", "-osc", "2", "-phisteps", "2", "-mosaic", "0.2", "-mosaic_dom", "2",
        "-divergence", "0.4", "-divsteps", "2", "-square_div", "-detector_thick", "100", "-detector_thicksteps", "2",
        "-polar", "0.5"]
for physical in (False, True):
    exp = nbjax.experiment_from_args(args, physical=physical)
    for dtype in (jnp.float64, jnp.float32):
        image = nbjax.render(exp, dtype=dtype)
        assert image.shape == (12, 12) and float(image.max()) > 0
c = nbjax.experiment_from_args(args)
trace = nbjax.ccompat.trace.pixel_trace(c, jnp.asarray([1, 2], jnp.int32), jnp.asarray([3, 4], jnp.int32))
assert trace.I.shape == (2,)
try:
    nbjax.samples.pixel_samples(exp, jnp.asarray([1, 2], jnp.int32), jnp.asarray([3], jnp.int32), jnp.float64)
except Exception as exc:  # a mismatched pixel list must be caught by the shape check
    print("caught", type(exc).__name__)
print("ok")
"""


def test_annotated_shapes_hold_at_run_time():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.split()
    assert lines[-1] == "ok" and "caught" in lines, proc.stdout[-2000:]
