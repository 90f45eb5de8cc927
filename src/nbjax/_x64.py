"""The one check that JAX runs in float64 before nbjax builds or renders an Experiment.

nbjax never changes JAX's global configuration: the ``nbjax`` command enables 64-bit mode for its
own process (``nbjax.cli.main``), tests enable it in their conftest, and a library user does it
once, before creating any array::

    import jax
    jax.config.update("jax_enable_x64", True)
"""

from __future__ import annotations

from nbjax.errors import NBError


class X64Error(NBError):
    """JAX's 64-bit mode is off, so nanoBragg's float64 geometry cannot be represented."""


MESSAGE = (
    "{what} needs JAX's 64-bit mode: call jax.config.update('jax_enable_x64', True) before "
    "building an Experiment, because nanoBragg's geometry needs float64 "
    "(nbjax does not change global JAX settings itself)"
)


NO_FLOAT64_BACKENDS = ("tpu",)  # XLA backends without float64 arithmetic
NO_FLOAT64 = (
    "{what}: JAX's default backend is {backend}, which has no float64 arithmetic, and nanoBragg's "
    "geometry needs it in both precisions (-precision single included); run on a CPU or GPU "
    "backend (JAX_PLATFORMS=cpu or cuda)"
)


def require_x64(what: str = "nbjax") -> None:
    """Raise :class:`X64Error` unless ``jax_enable_x64`` is on and the default backend has
    float64 arithmetic; ``what`` names the caller."""
    import jax

    if not jax.config.jax_enable_x64:
        raise X64Error(MESSAGE.format(what=what))
    backend = jax.default_backend()
    if backend in NO_FLOAT64_BACKENDS:
        raise X64Error(NO_FLOAT64.format(what=what, backend=backend.upper()))
