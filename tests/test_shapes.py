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


# ---------------------------------------------------------------------------------------------
# every jaxtyping annotation in nbjax resolves, and names its axes from nbjax.axes


def _nbjax_modules():
    import importlib
    import pkgutil

    import nbjax

    for info in pkgutil.walk_packages(nbjax.__path__, "nbjax."):
        if info.name.rsplit(".", 1)[-1] != "__main__":  # __main__ runs the CLI
            yield importlib.import_module(info.name)


def _annotated(module):
    """(qualified name, raw annotations dict, globals) of every function, method, property and
    class (its fields) defined in ``module``."""
    import inspect

    def function(qualname, fn):
        fn = inspect.unwrap(fn)
        if inspect.isfunction(fn) and getattr(fn, "__annotations__", None):
            yield qualname, fn.__annotations__, fn.__globals__

    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            yield f"{name}", dict(vars(obj).get("__annotations__", {})), vars(module)
            for attr, member in vars(obj).items():
                if isinstance(member, property):
                    member = member.fget
                elif isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if callable(member):
                    yield from function(f"{name}.{attr}", member)
        elif callable(obj):
            yield from function(name, obj)


def _array_types(hint):
    """The jaxtyping array types inside a resolved annotation (unions, tuples, lists)."""
    import typing

    import jaxtyping

    if isinstance(hint, type) and issubclass(hint, jaxtyping.AbstractArray):
        yield hint
    for arg in typing.get_args(hint):
        yield from _array_types(arg)


def test_annotations_resolve_and_use_the_axes_vocabulary():
    """A jaxtyping annotation that does not evaluate is silently not checked (the import hook
    treats it as Any): so every one must evaluate (ruff's UP037 once turned "3" into 3 and
    "T #L #Q #S" into the name T), and every axis name must be one of ``nbjax.axes.AXES``."""
    import re

    import jaxtyping

    from nbjax.axes import AXES

    dtypes = [n for n in dir(jaxtyping) if isinstance(getattr(jaxtyping, n, None), type)]
    dtypes = [n for n in dtypes if issubclass(getattr(jaxtyping, n), jaxtyping.AbstractDtype)]
    mentions_dtype = re.compile(r"\b(" + "|".join(dtypes) + r")\[")
    unresolved, unknown, seen = [], [], 0
    for module in _nbjax_modules():
        for qualname, annotations, namespace in _annotated(module):
            for arg, raw in annotations.items():
                where = f"{module.__name__}.{qualname} ({arg})"
                if isinstance(raw, str):
                    try:
                        hint = eval(raw, dict(namespace))  # the module's own annotation
                    except Exception as exc:
                        if mentions_dtype.search(raw):
                            unresolved.append(f"{where}: {raw!r}: {type(exc).__name__}: {exc}")
                        continue
                else:
                    hint = raw
                for array_type in _array_types(hint):
                    seen += 1
                    for dim in array_type.dim_str.split():
                        name = dim.split("=")[-1].lstrip("#*_?")
                        if name and name != "..." and not name.isdigit() and name not in AXES:
                            unknown.append(f"{where}: {name!r} in {array_type.dim_str!r}")
    assert not unresolved, "\n".join(unresolved)
    assert not unknown, "axis names missing from nbjax.axes.AXES:\n" + "\n".join(unknown)
    assert seen > 50, seen  # the walk found the annotations
