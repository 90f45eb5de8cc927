"""One XLA host device per CPU core, for a process that owns JAX's start-up (the CLI).

XLA:CPU can run the kernel's tile loop (``kernel._map_tiles_impl``, a ``lax.map``) on one
thread: when a step's pixel values are computed inside the fusion that writes them in place
into the stacked result, XLA does not split that fusion over its thread pool.  Given K host
devices, ``kernel.render_with_stats`` deals the tiles out to them (``shard_map``; every tile
computed as on one device, so the image is the same bit for bit) and K cores work.  Measured on
a 2-core Xeon, 1 -> 2 host devices, C-compatible single precision: 2048^2 x 1 source (one
sample per pixel) 0.14 -> 0.11 s (0.19 s on one device before ``ccompat.accumulation.
sample_sum``); 512^2 x 25 sources x 4 sub-pixels 0.37 -> 0.21 s before sample_sum, which
lets one device use both cores there (0.15 s, and no further gain from a second device).

XLA reads the device count once, when its CPU client starts, so this can only be asked for
before JAX starts in the process; the library never does it on its own (``nbjax.render``
takes ``devices=``).  ``NBJAX_HOST_DEVICES=N`` chooses N (1: off).
"""

from __future__ import annotations

import os
import sys

from nbjax import environment

FLAG = "--xla_force_host_platform_device_count"


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def request(count: int | None = None) -> int | None:
    """Ask XLA for ``count`` host devices (default ``NBJAX_HOST_DEVICES``, else one per usable
    core) by adding FLAG to XLA_FLAGS, unless XLA_FLAGS already sets it or JAX is already
    imported (too late).  Returns the count asked for, or None when nothing was changed."""
    if "jax" in sys.modules or FLAG in (environment.get("XLA_FLAGS") or ""):
        return None
    if count is None:
        env = (environment.get("NBJAX_HOST_DEVICES") or "").strip()
        count = int(env) if env.isdigit() else usable_cores()
    if count <= 1:
        return None
    os.environ["XLA_FLAGS"] = f"{environment.get('XLA_FLAGS') or ''} {FLAG}={count}".strip()
    return count
