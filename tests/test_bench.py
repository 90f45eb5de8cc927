"""``nbjax bench --quick`` end to end: every workload row, the summary figures, JSON and PNG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from nbjax.bench import WORKLOADS


def test_bench_quick_end_to_end(tmp_path):
    env = dict(os.environ)
    env.pop("NB_C_BIN", None)  # the C rows are optional; this test covers nbjax's own figures
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "nbjax", "bench", "--quick", "--json", "b.json", "--png", "b.png"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert elapsed < 120, f"--quick took {elapsed:.0f} s"
    report = json.loads((tmp_path / "b.json").read_text())
    rows = {(r["workload"], r["precision"]): r for r in report["workloads"]}
    assert set(rows) == {(w, p) for w in WORKLOADS for p in ("double", "single")}
    for (name, prec), r in rows.items():
        if WORKLOADS[name].kind == "fit" and not r.get("warm_s"):
            assert r["notes"] and r["notes"][0].startswith(("not available", "nbjax.fit"))
            continue
        for key in ("first_s", "warm_s", "samples", "samples_per_s", "images_per_s"):
            assert r[key] > 0, (name, prec, key, r[key])
        assert r["samples_per_s"] == pytest.approx(r["samples"] / r["warm_s"])
        if r.get("flops_per_sample") is not None:
            assert r["flops_per_sample"] > 0 and 0 < r["peak_fraction"]
    # a quick 1024_1src row is 64x64 pixels x 1 source x 1 phi x 1 mosaic domain
    assert rows[("1024_1src", "double")]["samples"] == 64 * 64
    assert rows[("1024_25src_os2", "double")]["samples"] == 48 * 48 * 4 * 25
    assert rows[("batch64_256", "double")]["images"] == WORKLOADS["batch64_256"].images_quick
    assert report["overhead_64px_s"] > 0 and report["grad"]["ratio"] > 0 and report["memory"]["peak_bytes"] > 0
    assert report["compile"]["cold_first_call_s"] > 0 and report["compile"]["cached_first_call_s"] > 0
    assert report["peak_flops"]["float64"] > 0 and report["peak_flops"]["float32"] > 0
    if "PNG written" in report["png"]:
        assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in report["png"] and not (tmp_path / "b.png").exists()
    assert "samples/s" in proc.stdout and "value_and_grad / forward" in proc.stdout
