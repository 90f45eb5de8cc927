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
import shutil
import sys
import time

from nbjax import environment
from nbjax.bench.peaks import device_peak, flops_per_sample, measure_fma, peak_memory
from nbjax.bench.processes import compile_times, run_c
from nbjax.bench.report import table, write_png
from nbjax.bench.workloads import OVERHEAD_PIXELS, RUNNERS, WORKLOADS, grad_ratio, renderer, timed

C_MAX_SAMPLES = 3e8  # the C program is skipped on bigger workloads (minutes on a CPU) unless --c-all


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(opts) -> dict:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # nbjax renders in float64 by default (the CLI does the same)
    device = jax.devices()[0]
    dtypes = {"double": jnp.float64, "single": jnp.float32}
    report = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "device": str(device),
            "local_devices": jax.local_device_count(),
            "device_kind": getattr(device, "device_kind", None),
            "quick": opts.quick,
            "repeat": opts.repeat,
        },
        "workloads": [],
    }
    _log(f"device {device} ({report['meta']['device_kind']})")
    peak = device_peak(device, measure_fma)
    report["peak_flops"] = peak
    c_bin = None if opts.no_c else environment.get("NB_C_BIN") or None
    for name in opts.workloads:
        w = WORKLOADS[name]
        for prec in opts.precisions:
            dtype = dtypes[prec]
            _log(f"{name} {prec} ...")
            row = {
                "workload": name,
                "description": w.description,
                "kind": w.kind,
                "precision": prec,
                "args": w.args(opts.quick),
            }
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
    render64 = renderer(jnp.float64)
    report["overhead_64px_s"] = timed(lambda: render64(small), max(opts.repeat, 5))[1]
    grad_args = WORKLOADS["1024_1src"].args(opts.quick)
    report["grad"] = grad_ratio(grad_args, jnp.float64, opts.repeat)
    report["compile"] = {"args": overhead_args} | (
        {} if opts.no_compile else compile_times(overhead_args, opts.timeout)
    )
    report["memory"] = peak_memory()
    report["meta"]["c_bin"] = c_bin
    return report


def main(argv: list[str], out=sys.stdout, err=sys.stderr) -> int:
    """``nbjax bench [options]``; returns the exit status (progress lines go to ``err``)."""
    ap = argparse.ArgumentParser(
        prog="nbjax bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes (CI)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--precisions", default="double,single", help="comma-separated subset of double,single")
    ap.add_argument("--repeat", type=int, default=3, help="warm calls per measurement, the fastest counts (default 3)")
    ap.add_argument("--json", default="nbjax-bench.json", metavar="PATH", help="JSON output (default nbjax-bench.json)")
    ap.add_argument("--png", default="nbjax-bench.png", metavar="PATH", help="PNG output (default nbjax-bench.png)")
    ap.add_argument("--no-png", action="store_true", help="do not write the PNG")
    ap.add_argument("--no-c", action="store_true", help="do not run the C program even when NB_C_BIN is set")
    ap.add_argument(
        "--c-all", action="store_true", help=f"run the C program also on workloads over {C_MAX_SAMPLES:.0g} samples"
    )
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
    c_bin = environment.get("NB_C_BIN")
    if (
        c_bin
        and not opts.no_c
        and not (os.path.isfile(c_bin) and os.access(c_bin, os.X_OK))
        and not shutil.which(c_bin)
    ):
        ap.error(f"NB_C_BIN={c_bin} is not an executable file")
    report = run(opts)
    lines = table(report)
    report["table"] = lines
    print("\n".join(lines), file=out)
    if not opts.no_png:
        note = write_png(report, opts.png)
        report["png"] = note
        print(note, file=out)
    with open(opts.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"JSON written to {opts.json}", file=out)
    return 0
