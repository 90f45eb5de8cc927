#!/usr/bin/env python3
"""The one prepared device script: speed and parity on whatever accelerator JAX sees.

1. ``nbjax bench`` (every workload; ``--quick`` for small sizes): OUT/bench.json, OUT/bench.png
   (when matplotlib is installed) and the printed table in OUT/bench.txt.
2. Every golden C case (tests/data/c_golden and tests/data/c_extra) through the CLI, in float64
   and in float32: max |diff|/max(C), correlation and sum ratio per case in OUT/golden.json
   (float64 must agree to 1e-5 of the image maximum; float32 to correlation 0.9999 and sum 1e-3).

OUT is $OUT when it is set (the device machine's returned folder), else --out (default
./accelerator-check).  Exit status 1 when a golden case disagrees.  Usage:

    PYTHONPATH=src python scripts/accelerator_check.py [--quick] [--skip-bench] [--skip-golden] [--out DIR]
"""

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])
)  # bench's child processes


def golden_parity(out_path: Path):
    import golden

    rows = []
    for case in golden.load_cases():
        for precision in ("double", "single"):
            t0 = time.perf_counter()
            try:
                with tempfile.TemporaryDirectory() as d:
                    image, _, _ = golden.run_nbjax(case, Path(d), extra=["-precision", precision])
                m = golden.metrics(golden.c_image(case), image)
                ok = (
                    m["max_rel"] <= 1e-5
                    if precision == "double"
                    else (m["corr"] >= 0.9999 and abs(m["sum_ratio"] - 1) <= 1e-3)
                )
                row = {
                    "case": case["id"],
                    "precision": precision,
                    "ok": bool(ok),
                    "seconds": time.perf_counter() - t0,
                    **m,
                }
                print(
                    f"{'OK ' if ok else 'BAD'} {precision:6s} {case['id']:32s} corr={m['corr']:.8f} "
                    f"sum={m['sum_ratio']:.8f} maxrel={m['max_rel']:.2e}",
                    flush=True,
                )
            except Exception as exc:  # noqa: BLE001 (one failing case must not hide the others)
                row = {"case": case["id"], "precision": precision, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
                print(f"BAD {precision:6s} {case['id']:32s} {row['error']}", flush=True)
            rows.append(row)
            out_path.write_text(json.dumps(rows, indent=1))  # kept up to date: a time-out loses nothing
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="accelerator-check", help="output folder when $OUT is not set")
    ap.add_argument("--quick", action="store_true", help="nbjax bench --quick")
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--skip-golden", action="store_true")
    opts = ap.parse_args()
    out = Path(os.environ.get("OUT") or opts.out)
    out.mkdir(parents=True, exist_ok=True)
    import jax

    print("devices:", [str(d) for d in jax.devices()], "jax", jax.__version__, flush=True)
    if not opts.skip_bench:
        from nbjax import bench

        text = io.StringIO()
        argv = ["--json", str(out / "bench.json"), "--png", str(out / "bench.png")] + (
            ["--quick"] if opts.quick else []
        )
        with contextlib.redirect_stdout(text):
            bench.main(argv)
        (out / "bench.txt").write_text(text.getvalue())
        print(text.getvalue(), flush=True)
    rows = [] if opts.skip_golden else golden_parity(out / "golden.json")
    bad = [r for r in rows if not r["ok"]]
    print(f"golden: {len(rows) - len(bad)} ok, {len(bad)} bad; results in {out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
