"""What the device can do: peak FLOP/s (a table of accelerators, or measured on a CPU), the
FLOPs per sample of a workload (XLA's cost analysis) and the peak memory used."""

from __future__ import annotations

import resource
import time

from nbjax.bench.workloads import PROBE_PIXELS, samples_per_image

# Peak FP32 and FP64 rates (TFLOP/s, without tensor cores) by device_kind substring; first match wins.
DEVICE_PEAKS_TFLOPS = [
    ("H200", 67.0, 34.0),
    ("H100 PCIe", 51.2, 25.6),
    ("H100", 67.0, 34.0),
    ("A100", 19.5, 9.7),
    ("RTX 4090", 82.6, 1.29),
    ("L40S", 91.6, 1.43),
    ("L4", 30.3, 0.47),
    ("V100", 15.7, 7.8),
    ("T4", 8.1, 0.25),
]


def device_peak(device, measured_fma):
    """{"float32": flop/s, "float64": flop/s, "source": text} for ``device``."""
    kind = getattr(device, "device_kind", "") or ""
    if device.platform != "cpu":
        for name, fp32, fp64 in DEVICE_PEAKS_TFLOPS:
            if name.lower() in kind.lower():
                return {"float32": fp32 * 1e12, "float64": fp64 * 1e12, "source": f"table: {name}"}
        return {"float32": None, "float64": None, "source": f"unknown device {kind!r}"}
    return {**measured_fma(), "source": "CPU: measured multiply-add loops"}


FMA_SHAPES = ((1 << 12, 64, 1600), (1 << 16, 32, 100), (1 << 18, 32, 25))  # (vector, chain, loop count)


def measure_fma():
    """FLOP/s per precision: the best of a few jitted loops of chained multiply-adds over vectors
    of several sizes (each run twice), a practical ceiling for XLA-generated code on this CPU."""
    import jax
    import jax.numpy as jnp

    out = {}
    for name, dtype in (("float32", jnp.float32), ("float64", jnp.float64)):
        best = 0.0
        for n, chain, iters in FMA_SHAPES:

            def body(i, v, chain=chain):
                for _ in range(chain):
                    v = v * 0.999 + 0.001
                return v

            loop = jax.jit(lambda x, iters=iters, body=body: jax.lax.fori_loop(0, iters, body, x))
            x = jnp.linspace(0.0, 1.0, n, dtype=dtype)
            loop(x).block_until_ready()
            for _ in range(2):
                t0 = time.perf_counter()
                loop(x).block_until_ready()
                best = max(best, 2.0 * n * chain * iters / (time.perf_counter() - t0))
        out[name] = best
    return out


def flops_per_sample(args: list[str], dtype) -> float | None:
    """XLA's FLOP count for ``args`` on a PROBE_PIXELS^2 detector, per sample (None if unknown)."""
    import nbjax

    probe_args = list(args)
    probe_args[probe_args.index("-detpixels") + 1] = str(PROBE_PIXELS)
    exp = nbjax.experiment_from_args(probe_args)
    try:
        import jax

        cost = (
            jax.jit(lambda e: nbjax.render(e, dtype=dtype, tile=PROBE_PIXELS**2)).lower(exp).compile().cost_analysis()
        )
        if isinstance(cost, (list, tuple)):
            cost = cost[0] if cost else None
        flops = (cost or {}).get("flops")
    except Exception:  # noqa: BLE001 (cost analysis is optional in XLA backends)
        return None
    return float(flops) / samples_per_image(exp) if flops and flops > 0 else None


def peak_memory() -> dict:
    """Peak device memory where the backend reports it, else the process's peak RSS."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    if stats.get("peak_bytes_in_use"):
        return {"peak_bytes": int(stats["peak_bytes_in_use"]), "source": "device memory_stats"}
    return {"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "source": "process peak RSS"}
