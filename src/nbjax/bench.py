"""``nbjax bench``: throughput of nbjax on whatever backend JAX sees.

Fixed workloads (all: 100 A cubic cell, -default_F 100, -N 5, lambda 1 A, distance 100 mm,
oversample 1 unless given):

  1024_1src        1024^2 pixels, 1 source
  1024_25src_os2   1024^2 pixels, 25 sources (5x5 square divergence), oversample 2
  4096_100src      4096^2 pixels, 100 sources (10x10 square divergence)
  batch64_256      64 images of 256^2 pixels, each with its own misset (orientation) and
                   3-wavelength spectrum; one ``nbjax.render_batch`` call when nbjax has it,
                   else 64 separate renders (said so in the notes)
  fit_step         one step of ``nbjax.fit`` on a 128^2 image (reported as not available when
                   nbjax has no ``fit``)

``--quick`` shrinks every workload (CI: well under a minute on two cores).  For each workload and
precision: first call (trace + compile + run) and warm time (min of --repeat calls, blocked on),
samples/s (pixels x sub-pixels x sources x phi steps x mosaic domains x layers evaluated per
second), images/s, and the fraction of the device's peak FP32/FP64 rate: FLOPs per sample from
XLA's cost analysis of the same workload on a 16x16 detector (one tile), against a table of
known accelerators or, on a CPU, the measured rate of a jitted multiply-add loop.  Also: warm
per-call overhead on a 64^2 image, compile time in a fresh process with an empty persistent
compilation cache and again with that cache filled, peak device memory (``memory_stats``) or the
process's peak RSS, and the value_and_grad / forward time ratio of sum(image^2) with respect to
the beam's wavelengths and directions.  With NB_C_BIN, the C program's whole-process time on the
single-image workloads and the ratio C / nbjax warm.  Writes JSON (--json) and a PNG (--png,
needs matplotlib: ``pip install 'nbjax[report]'``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

CRYSTAL = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-lambda", "1", "-distance", "100"]
DIV5 = ("-divergence", "1.0", "-divsteps", "5", "-square_div")
DIV10 = ("-divergence", "1.0", "-divsteps", "10", "-square_div")
OS1 = ("-oversample", "1")  # nanoBragg would choose its own oversampling otherwise


@dataclass(frozen=True)
class Workload:
    description: str
    kind: str  # "render", "batch" or "fit"
    pixels: int
    pixels_quick: int
    extra: tuple = ()
    images: int = 1
    images_quick: int = 1

    def args(self, quick: bool, pixels: int | None = None) -> list[str]:
        n = pixels or (self.pixels_quick if quick else self.pixels)
        return CRYSTAL + ["-detpixels", str(n)] + list(self.extra)


WORKLOADS = {
    "1024_1src": Workload("1024^2 x 1 source", "render", 1024, 64, OS1),
    "1024_25src_os2": Workload("1024^2 x 25 sources, oversample 2", "render", 1024, 48, DIV5 + ("-oversample", "2")),
    "4096_100src": Workload("4096^2 x 100 sources", "render", 4096, 32, DIV10 + OS1),
    "batch64_256": Workload("batch of 64 x 256^2, orientations and spectra", "batch", 256, 32, ("-dispersion", "2", "-dispsteps", "3") + OS1, 64, 4),
    "fit_step": Workload("one fit step, 128^2", "fit", 128, 32, OS1),
}
OVERHEAD_PIXELS = 64
PROBE_PIXELS = 16  # cost-analysis detector: one tile, so loop bodies are counted once = exactly
C_MAX_SAMPLES = 3e8  # the C program is skipped on bigger workloads (minutes on a CPU) unless --c-all

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


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


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


def samples_per_image(exp) -> int:
    """Evaluations per image: pixels x sub-pixels x sources x phi x mosaic domains x layers."""
    d, c = exp.detector, exp.crystal
    return int(d.fpixels * d.spixels * d.oversample**2 * d.layers * exp.beam.wavelengths.shape[0] * c.phi.shape[0] * c.mosaic_umats.shape[0])


def _timed(fn, repeat: int, budget_s: float = 60.0):
    """(first call seconds, min of up to ``repeat`` warm calls, kept under ``budget_s``)."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    best, spent = float("inf"), 0.0
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return first, best


def _renderer(dtype):
    import jax

    import nbjax

    return jax.jit(lambda e: nbjax.render(e, dtype=dtype))


def flops_per_sample(args: list[str], dtype) -> float | None:
    """XLA's FLOP count for ``args`` on a PROBE_PIXELS^2 detector, per sample (None if unknown)."""
    import nbjax

    probe_args = list(args)
    probe_args[probe_args.index("-detpixels") + 1] = str(PROBE_PIXELS)
    exp = nbjax.experiment_from_args(probe_args)
    try:
        import jax

        cost = jax.jit(lambda e: nbjax.render(e, dtype=dtype, tile=PROBE_PIXELS**2)).lower(exp).compile().cost_analysis()
        if isinstance(cost, (list, tuple)):
            cost = cost[0] if cost else None
        flops = (cost or {}).get("flops")
    except Exception:  # noqa: BLE001 (cost analysis is optional in XLA backends)
        return None
    return float(flops) / samples_per_image(exp) if flops and flops > 0 else None


def batch_experiments(args: list[str], count: int):
    """``count`` Experiments like ``args``, each with its own misset and wavelength."""
    import numpy as np

    import nbjax

    rng = np.random.default_rng(0)
    exps = []
    for i in range(count):
        angles = [f"{a:.3f}" for a in rng.uniform(-30.0, 30.0, 3)]
        lam = f"{0.9 + 0.2 * i / max(count - 1, 1):.4f}"
        argv = list(args)
        argv[argv.index("-lambda") + 1] = lam
        exps.append(nbjax.experiment_from_args(argv + ["-misset", *angles]))
    return exps


def stack(exps):
    """One Experiment whose array leaves have a leading batch axis."""
    import jax
    import jax.numpy as jnp

    return jax.tree.map(lambda *xs: jnp.stack(xs), *exps)


def run_c(c_bin: str, args: list[str], timeout: float) -> float | None:
    """Whole-process wall time of the C program on ``args`` (None if it failed)."""
    with tempfile.TemporaryDirectory(prefix="nbjax-bench-c-") as d:
        t0 = time.perf_counter()
        try:
            rc = subprocess.run([c_bin, *args, "-nonoise", "-nopgm", "-noprogress", "-floatfile", "c.bin"], cwd=d,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode
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
            proc = subprocess.run([sys.executable, "-c", _COMPILE_CHILD, cache, json.dumps(args)], capture_output=True,
                                  text=True, timeout=timeout)
            if proc.returncode != 0:
                return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            out[f"{label}_first_call_s"] = res["first_call_s"]
            out[f"{label}_import_s"] = res["import_s"]
    return out


def peak_memory() -> dict:
    """Peak device memory where the backend reports it, else the process's peak RSS."""
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    if stats.get("peak_bytes_in_use"):
        return {"peak_bytes": int(stats["peak_bytes_in_use"]), "source": "device memory_stats"}
    return {"peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "source": "process peak RSS"}


def grad_ratio(args: list[str], dtype, repeat: int) -> dict:
    """Warm time of value_and_grad of sum(image^2) w.r.t. beam wavelengths and directions,
    over the warm time of the forward sum alone."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import nbjax

    exp = nbjax.experiment_from_args(args)

    def loss(wavelengths, directions, e):
        e = eqx.tree_at(lambda x: (x.beam.wavelengths, x.beam.directions), e, (wavelengths, directions))
        return jnp.sum(nbjax.render(e, dtype=dtype) ** 2)

    forward = jax.jit(loss)
    both = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    wl, dirs = exp.beam.wavelengths, exp.beam.directions
    _, t_fwd = _timed(lambda: forward(wl, dirs, exp), repeat)
    _, t_vg = _timed(lambda: both(wl, dirs, exp), repeat)
    return {"forward_s": t_fwd, "value_and_grad_s": t_vg, "ratio": t_vg / t_fwd}


def bench_render(w: Workload, quick: bool, dtype, repeat: int) -> dict:
    import nbjax

    exp = nbjax.experiment_from_args(w.args(quick))
    render = _renderer(dtype)
    first, warm = _timed(lambda: render(exp), repeat)
    return {"first_s": first, "warm_s": warm, "images": 1, "samples": samples_per_image(exp), "notes": []}


def bench_batch(w: Workload, quick: bool, dtype, repeat: int) -> dict:
    import nbjax

    count = w.images_quick if quick else w.images
    exps = batch_experiments(w.args(quick), count)
    if hasattr(nbjax, "render_batch"):
        stacked = stack(exps)
        first, warm = _timed(lambda: nbjax.render_batch(stacked, dtype=dtype), repeat)
        notes = ["one nbjax.render_batch call"]
    else:
        render = _renderer(dtype)
        first, warm = _timed(lambda: [render(e) for e in exps], repeat)
        notes = [f"nbjax.render_batch not available: {count} separate renders"]
    return {"first_s": first, "warm_s": warm, "images": count, "samples": count * samples_per_image(exps[0]), "notes": notes}


def bench_fit(w: Workload, quick: bool, dtype, repeat: int) -> dict:
    import nbjax

    if not hasattr(nbjax, "fit"):
        return {"available": False, "notes": ["not available: nbjax has no fit"]}
    exp = nbjax.experiment_from_args(w.args(quick))
    target = _renderer(dtype)(exp) * 1.1
    try:
        first, warm = _timed(lambda: nbjax.fit(exp, target, steps=1), repeat)
    except Exception as exc:  # noqa: BLE001 (the fit API is new: report, do not crash the bench)
        return {"available": False, "notes": [f"nbjax.fit(exp, target, steps=1) failed: {type(exc).__name__}: {exc}"]}
    return {"first_s": first, "warm_s": warm, "images": 1, "samples": samples_per_image(exp), "notes": ["nbjax.fit, steps=1"]}


RUNNERS = {"render": bench_render, "batch": bench_batch, "fit": bench_fit}


def run(opts) -> dict:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # nbjax renders in float64 by default (the CLI does the same)
    device = jax.devices()[0]
    dtypes = {"double": jnp.float64, "single": jnp.float32}
    report = {
        "meta": {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "host": platform.node(), "cpus": os.cpu_count(),
                 "jax": jax.__version__, "backend": jax.default_backend(), "device": str(device),
                 "device_kind": getattr(device, "device_kind", None), "quick": opts.quick, "repeat": opts.repeat},
        "workloads": [],
    }
    _log(f"device {device} ({report['meta']['device_kind']})")
    peak = device_peak(device, measure_fma)
    report["peak_flops"] = peak
    c_bin = None if opts.no_c else os.environ.get("NB_C_BIN") or None
    for name in opts.workloads:
        w = WORKLOADS[name]
        for prec in opts.precisions:
            dtype = dtypes[prec]
            _log(f"{name} {prec} ...")
            row = {"workload": name, "description": w.description, "kind": w.kind, "precision": prec,
                   "args": w.args(opts.quick)}
            row.update(RUNNERS[w.kind](w, opts.quick, dtype, opts.repeat))
            if "warm_s" in row:
                row["samples_per_s"] = row["samples"] / row["warm_s"]
                row["images_per_s"] = row["images"] / row["warm_s"]
                fps = flops_per_sample(w.args(opts.quick), dtype) if w.kind != "fit" else None
                row["flops_per_sample"] = fps
                achieved = fps * row["samples_per_s"] if fps else None
                row["flops_per_s"] = achieved
                top = peak.get("float64" if prec == "double" else "float32")
                row["peak_fraction"] = achieved / top if achieved and top else None
                _log(f"  warm {row['warm_s']:.4g} s, {row['samples_per_s']:.3g} samples/s")
            report["workloads"].append(row)
        if c_bin and w.kind == "render":
            samples = next((r["samples"] for r in report["workloads"] if r["workload"] == name and "samples" in r), 0)
            if samples > C_MAX_SAMPLES and not opts.c_all:
                c_time, note = None, f"C skipped: {samples:.2g} samples (> {C_MAX_SAMPLES:.0g}; --c-all runs it)"
            else:
                _log(f"{name}: C program ...")
                c_time, note = run_c(c_bin, w.args(opts.quick), opts.timeout), None
            for r in report["workloads"]:
                if r["workload"] == name:
                    r["c_s"] = c_time
                    r["c_over_nbjax"] = c_time / r["warm_s"] if c_time and r.get("warm_s") else None
                    if note:
                        r["notes"].append(note)
    overhead_args = WORKLOADS["1024_1src"].args(opts.quick, pixels=OVERHEAD_PIXELS)
    _log("per-call overhead, gradient ratio, compile times ...")
    import nbjax

    small = nbjax.experiment_from_args(overhead_args)
    render64 = _renderer(jnp.float64)
    report["overhead_64px_s"] = _timed(lambda: render64(small), max(opts.repeat, 5))[1]
    grad_args = WORKLOADS["1024_1src"].args(opts.quick)
    report["grad"] = grad_ratio(grad_args, jnp.float64, opts.repeat)
    report["compile"] = {"args": overhead_args} | ({} if opts.no_compile else compile_times(overhead_args, opts.timeout))
    report["memory"] = peak_memory()
    report["meta"]["c_bin"] = c_bin
    return report


def _fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def table(report: dict) -> list[str]:
    hdr = ["workload", "prec", "first s", "warm s", "samples/s", "images/s", "GFLOP/s", "% peak", "C s", "C/nb", "notes"]
    rows = []
    for r in report["workloads"]:
        pf = r.get("peak_fraction")
        rows.append([r["workload"], r["precision"], _fmt(r.get("first_s")), _fmt(r.get("warm_s")), _fmt(r.get("samples_per_s")),
                     _fmt(r.get("images_per_s")), _fmt(None if r.get("flops_per_s") is None else r["flops_per_s"] / 1e9),
                     _fmt(None if pf is None else 100 * pf, ".2g"), _fmt(r.get("c_s")), _fmt(r.get("c_over_nbjax")), "; ".join(r.get("notes", []))])
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(hdr)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in [hdr, ["-" * w for w in widths]] + rows]
    meta, peak, comp, grad, mem = report["meta"], report["peak_flops"], report["compile"], report["grad"], report["memory"]
    lines += [
        "",
        f"device: {meta['device']} ({meta['device_kind']}), jax {meta['jax']}; peak FP32 {_fmt(peak.get('float32'))} FP64 {_fmt(peak.get('float64'))} FLOP/s ({peak['source']})",
        f"warm per-call overhead, {OVERHEAD_PIXELS}^2 image: {1e3 * report['overhead_64px_s']:.2f} ms",
        ("first render call in a fresh process: skipped (--no-compile)" if len(comp) == 1 else
         f"first render call in a fresh process: {_fmt(comp.get('cold_first_call_s'))} s with an empty compilation cache, "
         f"{_fmt(comp.get('cached_first_call_s'))} s from the filled cache (JAX + nbjax import {_fmt(comp.get('cached_import_s'))} s)"
         + (f"; error: {comp['error']}" if "error" in comp else "")),
        f"value_and_grad / forward (sum(image^2) w.r.t. wavelengths and directions, {grad_args_label(report)}): {grad['ratio']:.2f} "
        f"({grad['value_and_grad_s']:.4g} s / {grad['forward_s']:.4g} s)",
        f"peak memory: {mem['peak_bytes'] / 2**20:.0f} MiB ({mem['source']})",
        "samples: pixels x sub-pixels x sources x phi x mosaic x layers; % peak: XLA cost-analysis FLOPs per sample x samples/s over the peak; C/nb: C whole process / nbjax warm",
    ]
    return lines


def grad_args_label(report: dict) -> str:
    return f"workload 1024_1src{' (quick size)' if report['meta']['quick'] else ''}, double"


def write_png(report: dict, path: str) -> str:
    """Throughput and peak fraction per workload; returns a note (written, or why not)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"PNG not written: matplotlib is not installed (pip install 'nbjax[report]')"
    rows = [r for r in report["workloads"] if r.get("samples_per_s")]
    labels = [f"{r['workload']}\n{r['precision']}" for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(rows)), 4.5))
    ax1.bar(labels, [r["samples_per_s"] for r in rows], color="tab:blue")
    ax1.set_yscale("log")
    ax1.set_ylabel("samples / s")
    ax1.set_title("throughput")
    ax2.bar(labels, [100 * (r.get("peak_fraction") or 0.0) for r in rows], color="tab:orange")
    ax2.set_ylabel("% of peak FLOP/s")
    ax2.set_title(f"roofline fraction ({report['peak_flops']['source']})", fontsize=9)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(f"nbjax bench on {report['meta']['device_kind'] or report['meta']['device']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"PNG written to {path}"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="nbjax bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (CI)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--precisions", default="double,single", help="comma-separated subset of double,single")
    ap.add_argument("--repeat", type=int, default=3, help="warm calls per measurement, the fastest counts (default 3)")
    ap.add_argument("--json", default="nbjax-bench.json", metavar="PATH", help="JSON output (default nbjax-bench.json)")
    ap.add_argument("--png", default="nbjax-bench.png", metavar="PATH", help="PNG output (default nbjax-bench.png)")
    ap.add_argument("--no-png", action="store_true", help="do not write the PNG")
    ap.add_argument("--no-c", action="store_true", help="do not run the C program even when NB_C_BIN is set")
    ap.add_argument("--c-all", action="store_true", help=f"run the C program also on workloads over {C_MAX_SAMPLES:.0g} samples")
    ap.add_argument("--no-compile", action="store_true", help="skip the fresh-process compile-time measurement")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per subprocess (default 3600)")
    opts = ap.parse_args(argv)
    opts.workloads = [w.strip() for w in opts.workloads.split(",") if w.strip()]
    opts.precisions = [p.strip() for p in opts.precisions.split(",") if p.strip()]
    for w in opts.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r} (choose from {', '.join(WORKLOADS)})")
    for p in opts.precisions:
        if p not in ("double", "single"):
            ap.error(f"unknown precision {p!r} (choose from double,single)")
    c_bin = os.environ.get("NB_C_BIN")
    if c_bin and not opts.no_c and not (os.path.isfile(c_bin) and os.access(c_bin, os.X_OK)) and not shutil.which(c_bin):
        ap.error(f"NB_C_BIN={c_bin} is not an executable file")
    report = run(opts)
    lines = table(report)
    report["table"] = lines
    print("\n".join(lines))
    if not opts.no_png:
        note = write_png(report, opts.png)
        report["png"] = note
        print(note)
    with open(opts.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"JSON written to {opts.json}")
    return 0
