"""Every environment variable nbjax reads, in one table (the library reads none of them: the
commands, the benchmarks and the process set-up do, through ``get``).

Plain standard library, so the JAX-free parts (the bridge, the process set-up before JAX
starts) read the same table.
"""

from __future__ import annotations

import os

VARIABLES = {
    "NBJAX_CACHE_DIR": "JAX's persistent compilation cache of the nbjax commands "
    "(default ~/.cache/nbjax/jax; 'off': no cache)",
    "NBJAX_DEBUG": "set: an internal error shows its traceback instead of one line",
    "NBJAX_HOST_DEVICES": "XLA host devices the nbjax command asks for on a CPU (default: one per usable core; 1: off)",
    "NB_C_BIN": "the C nanoBragg executable, for live parity, the bridge and the benchmarks' C rows",
    "XLA_FLAGS": "XLA's own flags: nbjax adds the host device count to them, unless they set it",
}


def get(name: str, default: str | None = None) -> str | None:
    """The value of environment variable ``name`` (one of ``VARIABLES``), or ``default``."""
    if name not in VARIABLES:
        raise KeyError(f"{name} is not an environment variable nbjax reads (nbjax.environment.VARIABLES)")
    return os.environ.get(name, default)
