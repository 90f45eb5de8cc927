"""JAX's configuration for the nbjax commands (the library never changes it: a command owns
its process, so it may).  nanoBragg's geometry is float64, so 64-bit mode is on; compiled
programs are kept in a persistent cache (``NBJAX_CACHE_DIR``, ``nbjax.environment``)."""

from __future__ import annotations

import os

from nbjax import environment

DEFAULT_CACHE = os.path.join("~", ".cache", "nbjax", "jax")


def configure() -> None:
    """64-bit mode and the persistent compilation cache, for a command's process."""
    import jax

    jax.config.update("jax_enable_x64", True)
    cache = environment.get("NBJAX_CACHE_DIR") or os.path.expanduser(DEFAULT_CACHE)
    if cache != "off":
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
