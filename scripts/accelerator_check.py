#!/usr/bin/env python3
"""Parity and speed on whatever accelerator JAX sees (GPU/TPU; CPU works too).

Runs every golden C case (tests/data/c_golden) through the CLI in float64 and float32 and
reports max |diff|/max(C), correlation and sum ratio; then times the warm kernel for the
benchmark cases (1024x1024 with 1 and 25 sources, 4096x4096 with 1 and 100 sources) and
reports peak device memory.  Usage:

    PYTHONPATH=src python scripts/accelerator_check.py [--json OUT] [--skip-golden]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

BASE = "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1 -distance 100 -nonoise -nopgm -noprogress".split()
BENCH = {
    "1024_1src": BASE + ["-detpixels", "1024", "-oversample", "1"],
    "1024_25src_os2": BASE + ["-detpixels", "1024", "-divergence", "1.0", "-divsteps", "5", "-square_div", "-oversample", "2"],
    "4096_1src": BASE + ["-detpixels", "4096", "-oversample", "1"],
    "4096_100src": BASE + ["-detpixels", "4096", "-oversample", "1", "-divergence", "1.0", "-divsteps", "10", "-square_div"],
}


def golden_parity():
    import golden

    rows = []
    for case in golden.load_cases():
        for precision in ("double", "single"):
            with tempfile.TemporaryDirectory() as d:
                image, _, _ = golden.run_nbjax(case, Path(d), extra=["-precision", precision])
            m = golden.metrics(golden.c_image(case), image)
            ok = m["max_rel"] <= 1e-5 if precision == "double" else (m["corr"] >= 0.9999 and abs(m["sum_ratio"] - 1) <= 1e-3)
            rows.append({"case": case["id"], "precision": precision, "ok": bool(ok), **m})
            print(f"{'OK ' if ok else 'BAD'} {precision:6s} {case['id']:32s} corr={m['corr']:.8f} sum={m['sum_ratio']:.8f} maxrel={m['max_rel']:.2e}", flush=True)
    return rows


def bench(repeat=3):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # this script's own process; the library never does

    import nbjax
    from nbjax.kernel import render_with_stats

    rows = []
    for name, args in BENCH.items():
        exp = nbjax.experiment_from_args(args)
        for precision, dtype in (("double", jnp.float64), ("single", jnp.float32)):
            t0 = time.perf_counter()
            render_with_stats(exp, dtype=dtype).image.block_until_ready()
            first = time.perf_counter() - t0
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                render_with_stats(exp, dtype=dtype).image.block_until_ready()
                best = min(best, time.perf_counter() - t0)
            stats = jax.devices()[0].memory_stats() or {}
            row = {"case": name, "precision": precision, "first_s": first, "warm_s": best, "peak_bytes": stats.get("peak_bytes_in_use")}
            rows.append(row)
            print(f"{name:16s} {precision:6s} first {first:8.3f} s  warm {best:8.3f} s  peak {row['peak_bytes']}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json")
    ap.add_argument("--skip-golden", action="store_true")
    opts = ap.parse_args()
    import jax

    report = {"devices": [str(d) for d in jax.devices()], "jax": jax.__version__}
    print("devices:", report["devices"], flush=True)
    if not opts.skip_golden:
        report["golden"] = golden_parity()
    report["bench"] = bench()
    if opts.json:
        Path(opts.json).write_text(json.dumps(report, indent=1))
    bad = [r for r in report.get("golden", []) if not r["ok"]]
    print(f"golden: {len(report.get('golden', [])) - len(bad)} ok, {len(bad)} bad")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
