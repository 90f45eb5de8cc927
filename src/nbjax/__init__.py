"""nbjax: a differentiable JAX reimplementation of nanoBragg.

Public API (enable JAX's 64-bit mode first: nbjax never changes global JAX settings)::

    import jax
    jax.config.update("jax_enable_x64", True)
    import nbjax

    exp = nbjax.experiment_from_args(["-cell", "100", "100", "100", "90", "90", "90",
                                      "-default_F", "100", "-N", "5", "-detpixels", "64"])
    image = nbjax.render(exp)                  # (spixels, fpixels) photons/pixel, float64
    image32 = nbjax.render(exp, dtype=jnp.float32)

``Experiment`` is an equinox module, so ``jax.grad`` of any scalar of ``render(exp)`` with
respect to its array leaves (source directions and wavelengths, cell vectors, distance, Kahn
factor, ...) works; ``eqx.tree_at`` replaces a leaf.  ``lattice_from_cell`` builds the cell
vectors from cell constants and misset angles differentiably.

The public names load on first use (PEP 562), so ``import nbjax.ctables`` (nanoBragg's tables)
and the bridge do not import JAX.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_EXPORTS = {
    "Beam": "nbjax.experiment",
    "Crystal": "nbjax.experiment",
    "Detector": "nbjax.experiment",
    "Experiment": "nbjax.experiment",
    "StructureFactors": "nbjax.experiment",
    "render": "nbjax.kernel",
    "render_with_stats": "nbjax.kernel",
    "render_batch": "nbjax.kernel",
    "stack_experiments": "nbjax.kernel",
    "RenderResult": "nbjax.kernel",
    "AbstractAccumulation": "nbjax.strategy",
    "Physical": "nbjax.accumulation",
    "CCompatible": "nbjax.ccompat",
    "lattice_from_cell": "nbjax.setup.crystal",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nbjax' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


def experiment_from_args(args, physical: bool = False):
    """The Experiment the CLI would render for nanoBragg argv ``args`` (files are read now; no
    file is written, unlike the CLI's Fdump.bin).  Each C quirk that changes this run's result
    is issued as a Python ``UserWarning``.

    Raises :class:`nbjax._x64.X64Error` unless ``jax_enable_x64`` is on."""
    import warnings

    from nbjax import setup
    from nbjax._x64 import require_x64
    from nbjax.cli.flags import parse_argv
    from nbjax.cli.headers import apply_headers
    from nbjax.settings import RunSettings

    require_x64("nbjax.experiment_from_args")
    settings = RunSettings(physical=physical)
    apply_headers(settings, list(args))
    parse_argv(list(args), settings)
    result = setup.build(settings)
    for text in result.warnings:
        warnings.warn(f"nbjax: {text}", UserWarning, stacklevel=2)
    return result.experiment


__all__ = [
    "AbstractAccumulation",
    "Beam",
    "CCompatible",
    "Crystal",
    "Detector",
    "Experiment",
    "Physical",
    "RenderResult",
    "StructureFactors",
    "experiment_from_args",
    "lattice_from_cell",
    "render",
    "render_batch",
    "render_with_stats",
    "stack_experiments",
]
