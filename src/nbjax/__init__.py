"""nbjax: a differentiable JAX reimplementation of nanoBragg.

Public API::

    exp = nbjax.experiment_from_args(["-cell", "100", "100", "100", "90", "90", "90",
                                      "-default_F", "100", "-N", "5", "-detpixels", "64"])
    image = nbjax.render(exp)                  # (spixels, fpixels) photons/pixel, float64
    image32 = nbjax.render(exp, dtype=jnp.float32)

``Experiment`` is an equinox module, so ``jax.grad`` of any scalar of ``render(exp)`` with
respect to its array leaves (source directions and wavelengths, cell vectors, distance, Kahn
factor, ...) works; ``eqx.tree_at`` replaces a leaf.  ``lattice_from_cell`` builds the cell
vectors from cell constants and misset angles differentiably.
"""

import jax

jax.config.update("jax_enable_x64", True)

from nbjax.experiment import Beam, Crystal, Detector, Experiment, StructureFactors  # noqa: E402
from nbjax.accumulation import AbstractAccumulation, Physical  # noqa: E402
from nbjax.ccompat import CCompatible  # noqa: E402
from nbjax.kernel import RenderResult, render, render_with_stats  # noqa: E402
from nbjax.setup.crystal import lattice_from_cell  # noqa: E402


def experiment_from_args(args, physical: bool = False) -> Experiment:
    """The Experiment the CLI would render for nanoBragg argv ``args`` (files are read now)."""
    from nbjax import setup
    from nbjax.cli.flags import parse_argv
    from nbjax.cli.headers import apply_headers
    from nbjax.settings import RunSettings

    settings = RunSettings(physical=physical)
    apply_headers(settings, list(args))
    parse_argv(list(args), settings)
    return setup.build(settings)[0]


__all__ = ["AbstractAccumulation", "Beam", "CCompatible", "Crystal", "Detector", "Experiment", "Physical", "RenderResult", "StructureFactors", "experiment_from_args", "lattice_from_cell", "render", "render_with_stats"]
