"""``nbjax batch`` (many command lines in one process) and the bridge's shared nbjax process."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import golden
import numpy as np
import pytest

from nbjax.cli.batch import STATUS_LINE, parse_line
from nbjax_bridge import cli as bridge_cli
from nbjax_bridge import runners
from nbjax_bridge.batchworker import BatchWorker, is_nbjax

FAKES = Path(__file__).parent / "bridge_fakes"
CASES = {c["id"]: c for c in golden.load_cases()}


# ----------------------------------------------------------------------------- batch file lines


def test_parse_line_words_quotes_comments_program_and_redirects():
    assert parse_line(1, "   # only a comment") is None and parse_line(2, "\r") is None
    line = parse_line(3, "nanoBragg -floatfile 'a b.bin' -N 5 >out.txt 2> 'err log' # note")
    assert line.argv == ["-floatfile", "a b.bin", "-N", "5"]
    assert (line.stdout, line.stderr, line.cd, line.error) == ("out.txt", "err log", None, None)
    assert parse_line(4, "/opt/bin/nbjax -N 5").argv == ["-N", "5"]
    assert parse_line(5, "cd 'runs/case 1'").cd == "runs/case 1"
    assert parse_line(6, "cd a b").error == "cd takes one folder"
    assert "needs a file name" in parse_line(7, "-N 5 >").error
    assert "cannot split" in parse_line(8, "-floatfile 'open").error


def _nbjax(args, cwd, **kw):
    env = dict(os.environ, NBJAX_CACHE_DIR=os.environ.get("NBJAX_CACHE_DIR", "off"))
    return subprocess.run(
        [sys.executable, "-m", "nbjax", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300, **kw
    )


def test_batch_runs_every_line_in_one_process(tmp_path):
    cases = [CASES["cubic-64"], CASES["dmin"]]
    for case in cases:
        (tmp_path / case["id"]).mkdir()
        golden.prepare(case, tmp_path / case["id"])
    lines = ["# two golden cases, a failing line, then a line after it"]
    for case in cases:
        lines += [
            f"cd {case['id']}",
            shlex.join(case["args"] + ["-floatfile", "nb.bin"]) + " >out.txt 2>err.txt",
            "cd ..",
        ]
    lines += [
        "-hkl missing.hkl -cell 100 100 100 90 90 90 -N 5 -detpixels 16",
        "cd nowhere",
        "cd ..",
        "nbjax -demo -detpixels 16 -floatfile last.bin >last.txt",
    ]
    (tmp_path / "jobs.txt").write_text("\n".join(lines) + "\n")
    proc = _nbjax(["batch", "jobs.txt"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    status = [STATUS_LINE.match(s) for s in proc.stdout.splitlines() if s.startswith("nbjax batch: line ")]
    assert [(int(m.group(1)), int(m.group(2))) for m in status] == [(3, 0), (6, 0), (8, 9), (9, 2), (11, 0)]
    assert proc.stdout.rstrip().endswith("nbjax batch: 5 line(s): 3 ok, 2 failed (lines 8, 9)")
    assert "nbjax: error: unable to open missing.hkl" in proc.stderr and "no folder" in proc.stderr
    for case in cases:
        folder = tmp_path / case["id"]
        m = golden.metrics(golden.c_image(case), np.fromfile(folder / "nb.bin", dtype="<f4"))
        assert m["max_rel"] <= 1e-5 and abs(m["sum_ratio"] - 1) <= 1e-6
        out = (folder / "out.txt").read_text()
        assert out.startswith("nanoBragg nanocrystal diffraction simulator") and "writing nb.bin as" in out
        assert "nbjax batch" not in out
    assert (tmp_path / "last.bin").stat().st_size == 16 * 16 * 4  # the line after the failures ran


def test_batch_unreadable_file_and_usage(tmp_path):
    proc = _nbjax(["batch", "none.txt"], tmp_path)
    assert (
        proc.returncode == 2 and proc.stderr.strip() == "nbjax: error: batch file none.txt: No such file or directory"
    )
    proc = _nbjax(["batch"], tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: nbjax batch")


# ----------------------------------------------------------------------------- the bridge's shared process


def test_is_nbjax():
    assert is_nbjax([sys.executable, "-m", "nbjax"]) and is_nbjax(["/venv/bin/nbjax"])
    assert not is_nbjax([sys.executable, "fake.py"]) and not is_nbjax(["/opt/nanoBragg"])


def test_shared_worker_reports_timeouts_and_crashes_then_restarts(tmp_path):
    worker = BatchWorker([sys.executable, str(FAKES / "batch.py")])
    runner = runners.Runner("py", [sys.executable, "-m", "nbjax"], shared=worker)
    args = ["-detpixels", "12", "-floatfile", "f.bin"]
    try:

        def run(name, extra=(), timeout=60.0):
            return runners.run(runner, args + list(extra), tmp_path / name, "f.bin", timeout)

        ok = run("a")
        assert ok.status == runners.OK and ok.returncode == 0 and ok.has_image
        assert "(12x12 pixels)" in ok.stdout() and ok.stderr() == "fake stderr line\n"
        first = worker.proc.pid
        assert run("b").status == runners.OK and worker.proc.pid == first  # the same process
        hung = run("c", ["-fake-hang"], timeout=2.0)
        assert hung.status == runners.TIMEOUT and hung.timed_out and 1.5 < hung.elapsed_s < 30
        crashed = run("d", ["-fake-segv"])
        assert crashed.status == runners.SIGNALED and crashed.signal_name == "SIGSEGV"
        again = run("e")
        assert again.status == runners.OK and worker.proc.pid != first
        assert not worker.accepts(["-floatfile", ">x"]) and worker.accepts(args)
    finally:
        worker.close()


def test_replay_in_one_process_matches_separate_processes(tmp_path, capsys):
    reports = {}
    for mode in ("shared", "separate"):
        out_json = tmp_path / f"{mode}.json"
        argv = ["replay", str(golden.GOLDEN), "--only", "cubic-64", "hkl-interpolate", "--json", str(out_json)]
        code = bridge_cli.main(argv + (["--separate-processes"] if mode == "separate" else []))
        assert code == 0, capsys.readouterr()
        reports[mode] = json.loads(out_json.read_text())
    keys = ("id", "status", "exit_code", "verdict", "peaks")
    rows = {mode: [{k: r[k] for k in keys} for r in rep["cases"]] for mode, rep in reports.items()}
    assert rows["shared"] == rows["separate"] and [r["status"] for r in rows["shared"]] == ["PASS", "PASS"]
    for shared, separate in zip(reports["shared"]["cases"], reports["separate"]["cases"], strict=True):
        for key in ("corr", "sum_ratio", "max_abs_diff"):
            assert shared[key] == pytest.approx(separate[key], rel=1e-9, abs=1e-12)
    assert reports["shared"]["summary"] == reports["separate"]["summary"]
