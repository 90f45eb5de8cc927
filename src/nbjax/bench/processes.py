"""The bench's measurements in other processes: the C program's whole run, and the first
render call of a fresh Python process with an empty and with a filled compilation cache."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time


def run_c(c_bin: str, args: list[str], timeout: float) -> float | None:
    """Whole-process wall time of the C program on ``args`` (None if it failed)."""
    with tempfile.TemporaryDirectory(prefix="nbjax-bench-c-") as d:
        t0 = time.perf_counter()
        try:
            rc = subprocess.run(
                [c_bin, *args, "-nonoise", "-nopgm", "-noprogress", "-floatfile", "c.bin"],
                cwd=d,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
            ).returncode
        except subprocess.TimeoutExpired:
            return None
        return time.perf_counter() - t0 if rc == 0 else None


_COMPILE_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import jax
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
import jax.numpy as jnp
import nbjax
exp = nbjax.experiment_from_args(json.loads(sys.argv[2]))
t1 = time.perf_counter()
jax.jit(lambda e: nbjax.render(e, dtype=jnp.float64))(exp).block_until_ready()
print(json.dumps({"import_s": t1 - t0, "first_call_s": time.perf_counter() - t1}))
"""


def compile_times(args: list[str], timeout: float) -> dict:
    """First render call in a fresh process: with an empty persistent cache, then with it filled."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="nbjax-bench-cache-") as cache:
        for label in ("cold", "cached"):
            proc = subprocess.run(
                [sys.executable, "-c", _COMPILE_CHILD, cache, json.dumps(args)],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if proc.returncode != 0:
                return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            out[f"{label}_first_call_s"] = res["first_call_s"]
            out[f"{label}_import_s"] = res["import_s"]
    return out
