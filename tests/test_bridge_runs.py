"""End-to-end tests of nbjax-bridge compare/bundle/matrix/replay with fake runners.

No C binary is needed: tests/bridge_fakes/ holds small Python programs that take nanoBragg argv.
Tests marked live use the real C binary from $NB_C_BIN and are skipped when it is unset.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nbjax_bridge import cli, exitcodes
from nbjax_bridge.png import SIGNATURE

FAKES = Path(__file__).parent / "bridge_fakes"
GOLDEN = Path(__file__).parent / "data" / "c_golden"
NB_C_BIN = os.environ.get("NB_C_BIN")
live = pytest.mark.skipif(not NB_C_BIN, reason="NB_C_BIN not set (live C binary tests)")

ARGS = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "48"]


def fake_bin(tmp_path: Path, name: str) -> str:
    """An executable wrapper around a fake (exec keeps signals and pid)."""
    path = tmp_path / f"fake_{name}.sh"
    path.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(FAKES / (name + ".py")))} "$@"\n')
    path.chmod(0o755)
    return str(path)


def py_cmd(name: str) -> str:
    return shlex.join([sys.executable, str(FAKES / f"{name}.py")])


def run_cli(capsys, argv, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = cli.main(argv)
    finally:
        os.chdir(old)
    out = capsys.readouterr()
    return code, out.out, out.err


def only_bundle(root: Path) -> Path:
    dirs = [p for p in root.rglob("*") if p.is_dir() and (p / "notes.md").exists()]
    assert len(dirs) == 1, dirs
    return dirs[0]


# ----------------------------------------------------------------------------- compare


def test_compare_exact_fakes_pass(tmp_path, capsys):
    code, out, err = run_cli(
        capsys, ["compare", "--c-bin", fake_bin(tmp_path, "exact"), "--py-cmd", py_cmd("exact"), "--", *ARGS], tmp_path
    )
    assert code == exitcodes.PASS, out + err
    verdict = [l for l in out.splitlines() if l.startswith(("PASS", "FAIL"))]
    assert verdict and verdict[0].startswith("PASS") and "corr=1.000000" in verdict[0]
    assert "sum_ratio=1.000000" in verdict[0]
    assert "48x48" in out  # shape from the stdout line
    assert not (tmp_path / "float.bin").exists()  # runs happen in temporary folders


def test_compare_perturbed_is_below_threshold(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        ["compare", "--c-bin", fake_bin(tmp_path, "exact"), "--py-cmd", py_cmd("perturb"), "--", *ARGS],
        tmp_path,
    )
    assert code == exitcodes.BELOW_THRESHOLD
    assert "FAIL  below threshold" in out


def test_compare_loose_threshold_passes_perturbed(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        [
            "compare",
            "--c-bin",
            fake_bin(tmp_path, "exact"),
            "--py-cmd",
            py_cmd("perturb"),
            "--threshold",
            "0.5",
            "--sum-tol",
            "0.1",
            "--",
            *ARGS,
        ],
        tmp_path,
    )
    assert code == exitcodes.PASS, out


def test_compare_shape_mismatch(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys, ["compare", "--c-bin", fake_bin(tmp_path, "exact"), "--py-cmd", py_cmd("shape"), "--", *ARGS], tmp_path
    )
    assert code == exitcodes.SHAPE_MISMATCH
    assert "shape mismatch" in out and "48x48" in out and "49x48" in out


@pytest.mark.parametrize("fake", ["nonzero", "noimage"])
def test_compare_nbjax_failure_is_runner_failure(tmp_path, capsys, fake):
    code, out, _ = run_cli(
        capsys, ["compare", "--c-bin", fake_bin(tmp_path, "exact"), "--py-cmd", py_cmd(fake), "--", *ARGS], tmp_path
    )
    assert code == exitcodes.RUNNER_FAILURE
    assert "runner failure" in out


def test_compare_roi_restricts_metrics(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        [
            "compare",
            "--c-bin",
            fake_bin(tmp_path, "exact"),
            "--py-cmd",
            py_cmd("exact"),
            "--roi",
            "0",
            "9",
            "0",
            "4",
            "--",
            *ARGS,
        ],
        tmp_path,
    )
    assert code == exitcodes.PASS
    assert "0 9 0 4" in out


def test_compare_input_files_are_staged_and_rewritten(tmp_path, capsys):
    data = tmp_path / "elsewhere"
    data.mkdir()
    (data / "sources.txt").write_text("-10 0 0 1 1e-10\n")
    (data / "Fs.hkl").write_text("0 0 0 10\n1 0 0 5\n")
    run_in = tmp_path / "work"
    run_in.mkdir()
    args = ARGS + ["-sourcefile", str(data / "sources.txt"), "-hkl", "../elsewhere/Fs.hkl", "-floatfile", "mine.bin"]
    code, out, _ = run_cli(
        capsys, ["compare", "--c-bin", fake_bin(tmp_path, "exact"), "--py-cmd", py_cmd("exact"), "--", *args], run_in
    )
    assert code == exitcodes.PASS, out  # the fakes exit 9 when an input is not in their folder
    assert "replaced" in out and not (run_in / "mine.bin").exists()


def test_compare_missing_input_is_io_error(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        [
            "compare",
            "--c-bin",
            fake_bin(tmp_path, "exact"),
            "--py-cmd",
            py_cmd("exact"),
            "--",
            *ARGS,
            "-sourcefile",
            "nope.txt",
        ],
        tmp_path,
    )
    assert code == exitcodes.IO_ERROR
    assert "nope.txt" in err and len(err.strip().splitlines()) == 1


def test_missing_binary_is_one_line_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NB_C_BIN", raising=False)
    code, out, err = run_cli(
        capsys, ["compare", "--c-bin", str(tmp_path / "missing"), "--py-cmd", py_cmd("exact"), "--", *ARGS], tmp_path
    )
    assert code == exitcodes.USAGE
    assert err.strip() == f"nbjax-bridge: error: C binary not found: {tmp_path / 'missing'}"
    assert out == ""
    plain = tmp_path / "plain"
    plain.write_text("not executable")
    code, _, err = run_cli(capsys, ["compare", "--c-bin", str(plain), "--", *ARGS], tmp_path)
    assert code == exitcodes.USAGE and "not executable" in err
    code, _, err = run_cli(capsys, ["compare", "--", *ARGS], tmp_path)
    assert code == exitcodes.USAGE and "NB_C_BIN" in err


def test_usage_errors_exit_2_without_traceback():
    base = [sys.executable, "-m", "nbjax_bridge"]
    for argv in (["compare"], ["bogus"], ["compare", "--threshold", "x", "--", "-N", "1"], []):
        proc = subprocess.run(base + argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == exitcodes.USAGE, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_help_documents_exit_codes():
    proc = subprocess.run(
        [sys.executable, "-m", "nbjax_bridge", "compare", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for code in ("0  pass", "3  runner failure", "4  below threshold", "5  shape mismatch", "6  I/O error"):
        assert code in proc.stdout


# ----------------------------------------------------------------------------- bundle


def test_bundle_layout_and_fixture_hashes(tmp_path, capsys):
    (tmp_path / "sources.txt").write_text("-10 0 0 1 1e-10\n-10 0.01 0 0.5 1e-10\n")
    (tmp_path / "Fs.hkl").write_text("0 0 0 10\n1 0 0 5\n")
    (tmp_path / "test_tiny.py").write_text("def test_ok():\n    assert True\n")
    args = ARGS + ["-sourcefile", "sources.txt", "-hkl", "Fs.hkl"]
    code, out, _ = run_cli(
        capsys,
        [
            "bundle",
            "--topic",
            "demo",
            "--c-bin",
            fake_bin(tmp_path, "exact"),
            "--py-cmd",
            py_cmd("exact"),
            "--pytest",
            "test_tiny.py -q",
            "--",
            *args,
        ],
        tmp_path,
    )
    assert code == exitcodes.PASS, out
    b = only_bundle(tmp_path / "reports")
    assert b.parent.name == "demo" and len(b.name) == len("20250101T000000Z") and b.name.endswith("Z")
    for name in (
        "commands.txt",
        "c_stdout.txt",
        "c_stderr.txt",
        "py_stdout.txt",
        "py_stderr.txt",
        "c_float.bin",
        "py_float.bin",
        "metrics.json",
        "fixture.sha256",
        "notes.md",
        "c.png",
        "py.png",
        "diff.png",
        "pytest.log",
    ):
        assert (b / name).is_file(), name
    # fixture.sha256 is sha256sum format with the paths as given, relative to the run folder
    lines = (b / "fixture.sha256").read_text().splitlines()
    assert len(lines) == 2
    for line in lines:
        digest, path = line.split("  ", 1)
        assert hashlib.sha256((tmp_path / path).read_bytes()).hexdigest() == digest
    m = json.loads((b / "metrics.json").read_text())
    assert m["exit_code"] == 0 and m["metrics"]["corr"] == 1.0 and m["pytest"]["returncode"] == 0
    assert m["c"]["status"] == "ok" and m["py"]["elapsed_s"] >= 0
    assert "1 passed" in (b / "pytest.log").read_text()
    cmds = (b / "commands.txt").read_text()
    for key in ("NB_C_BIN", "OMP_NUM_THREADS", "XLA_FLAGS", "PATH=", "-floatfile float.bin", "-m pytest"):
        assert key in cmds
    notes = (b / "notes.md").read_text()
    assert "sha256" in notes and "PASS" in notes and "source_weights_ignored" in notes
    assert np.fromfile(b / "c_float.bin", "<f4").size == 48 * 48
    for name in ("c.png", "py.png", "diff.png"):
        assert (b / name).read_bytes()[:8] == SIGNATURE
    assert "bundle:" in out


def test_bundle_segfault_keeps_c_outputs(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        ["bundle", "--topic", "crash", "--c-bin", fake_bin(tmp_path, "segv"), "--py-cmd", py_cmd("exact"), "--", *ARGS],
        tmp_path,
    )
    assert code == exitcodes.RUNNER_FAILURE
    assert "SIGSEGV" in out
    b = only_bundle(tmp_path / "reports")
    seg = b / "c_segfault"
    assert (seg / "c_stdout.txt").read_text().count("pixels)") == 1
    assert "about to crash" in (seg / "c_stderr.txt").read_text()
    status = json.loads((seg / "status.json").read_text())
    assert status["signal"] == "SIGSEGV" and status["status"] == "signal"
    notes = (b / "notes.md").read_text()
    assert "SIGSEGV" in notes and "c_segfault/" in notes
    assert (b / "py_float.bin").is_file() and (b / "py.png").is_file()
    assert not (b / "c_float.bin").exists()
    m = json.loads((b / "metrics.json").read_text())
    assert m["exit_code"] == 3 and m["c"]["signal"] == "SIGSEGV"


def test_bundle_timeout_kills_and_reports(tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        [
            "bundle",
            "--topic",
            "hang",
            "--timeout",
            "2",
            "--c-bin",
            fake_bin(tmp_path, "hang"),
            "--py-cmd",
            py_cmd("exact"),
            "--",
            *ARGS,
        ],
        tmp_path,
    )
    assert code == exitcodes.RUNNER_FAILURE
    assert "timed out" in out
    b = only_bundle(tmp_path / "reports")
    assert (b / "c_timeout" / "status.json").is_file()
    assert "pixels)" in (b / "c_timeout" / "c_stdout.txt").read_text()
    assert "c_timeout/" in (b / "notes.md").read_text()


def test_bundle_lint_error_is_noted(tmp_path, capsys):
    (tmp_path / "sources.txt").write_text("# X Y Z I lambda\n-10 0 0 1 1e-10\n")
    code, _, _ = run_cli(
        capsys,
        [
            "bundle",
            "--topic",
            "nan",
            "--c-bin",
            fake_bin(tmp_path, "exact"),
            "--py-cmd",
            py_cmd("exact"),
            "--",
            *ARGS,
            "-sourcefile",
            "sources.txt",
        ],
        tmp_path,
    )
    assert code == exitcodes.PASS  # the fakes do not care; the notes warn about C
    notes = (only_bundle(tmp_path / "reports") / "notes.md").read_text()
    assert "C will fail on this input" in notes and "source_comment_line" in notes


# ----------------------------------------------------------------------------- matrix / replay


CASES = """
[[case]]
id = "plain"
args = ["-cell","100","100","100","90","90","90","-default_F","100","-detpixels","32"]

[[case]]
id = "with-files"
args = ["-hkl","grid.hkl","-sourcefile","sources.txt","-detpixels","40"]
files = { "sources.txt" = "-10 0 0\\n" }
grid_hkl = { name = "grid.hkl", range = 2, seed = 7 }

[[case]]
id = "impossible"
threshold = 1.5
args = ["-detpixels","32"]

[[case]]
id = "needs-smv"
args = ["-img","in.img"]
smv_inputs = { "in.img" = { size1 = 8, size2 = 8, fill = 1 } }
"""


def test_matrix_runs_cases_and_reports(tmp_path, capsys):
    cases = tmp_path / "cases.toml"
    cases.write_text(CASES)
    out_json = tmp_path / "m.json"
    code, out, _ = run_cli(
        capsys,
        [
            "matrix",
            str(cases),
            "--c-bin",
            fake_bin(tmp_path, "exact"),
            "--py-cmd",
            py_cmd("exact"),
            "--json",
            str(out_json),
        ],
        tmp_path,
    )
    assert code == exitcodes.BELOW_THRESHOLD  # the "impossible" case
    rep = json.loads(out_json.read_text())
    status = {c["id"]: c["status"] for c in rep["cases"]}
    assert status == {"plain": "PASS", "with-files": "PASS", "impossible": "FAIL", "needs-smv": "SKIP"}
    assert "skipped: smv_inputs not generated" in out
    assert rep["summary"]["PASS"] == 2 and rep["summary"]["exit_code"] == 4
    code, out, _ = run_cli(
        capsys,
        [
            "matrix",
            str(cases),
            "--only",
            "plain",
            "with-files",
            "--c-bin",
            fake_bin(tmp_path, "exact"),
            "--py-cmd",
            py_cmd("exact"),
            "--json",
            str(out_json),
        ],
        tmp_path,
    )
    assert code == exitcodes.PASS, out
    code, _, err = run_cli(
        capsys, ["matrix", str(cases), "--only", "nope", "--c-bin", fake_bin(tmp_path, "exact")], tmp_path
    )
    assert code == exitcodes.USAGE and "nope" in err


def test_replay_against_stored_images(tmp_path, capsys):
    root = tmp_path / "golden"
    (root / "a").mkdir(parents=True)
    (root / "cases.toml").write_text(
        '[[case]]\nid = "a"\nargs = ["-detpixels","24","-sourcefile",'
        '"sources.txt"]\nfiles = { "sources.txt" = "-10 0 0\\n" }\n'
    )
    (root / "a" / "sources.txt").write_text("-10 0 0\n")
    # store an image made by the exact fake
    work = tmp_path / "w"
    work.mkdir()
    (work / "sources.txt").write_text("-10 0 0\n")
    subprocess.run(
        [
            sys.executable,
            str(FAKES / "exact.py"),
            "-detpixels",
            "24",
            "-sourcefile",
            "sources.txt",
            "-floatfile",
            str(root / "a" / "c_float.bin"),
        ],
        cwd=work,
        check=True,
        capture_output=True,
    )
    (root / "a" / "c_stdout.txt").write_text("  distance=0.1 detsize=0x0  pixel=0.0001 meters (24x24 pixels)\n")
    j = tmp_path / "r.json"
    code, out, _ = run_cli(capsys, ["replay", str(root), "--py-cmd", py_cmd("exact"), "--json", str(j)], tmp_path)
    assert code == exitcodes.PASS, out
    code, _, _ = run_cli(capsys, ["replay", str(root), "--py-cmd", py_cmd("perturb"), "--json", str(j)], tmp_path)
    assert code == exitcodes.BELOW_THRESHOLD
    (root / "a" / "c_float.bin").unlink()
    code, _, _ = run_cli(capsys, ["replay", str(root), "--py-cmd", py_cmd("exact"), "--json", str(j)], tmp_path)
    assert code == exitcodes.IO_ERROR


# ----------------------------------------------------------------------------- live C (optional)


@live
def test_live_replay_golden_with_c_binary(tmp_path, capsys):
    j = tmp_path / "r.json"
    code, out, _ = run_cli(
        capsys,
        [
            "replay",
            str(GOLDEN),
            "--only",
            "src-weights-seed",
            "hkl-interpolate",
            "mat-file",
            "--py-cmd",
            NB_C_BIN,
            "--json",
            str(j),
        ],
        tmp_path,
    )
    assert code == exitcodes.PASS, out
    rep = json.loads(j.read_text())
    assert all(c["max_abs_diff"] == 0 for c in rep["cases"])


@live
def test_live_c_vs_c_bundle_is_exact(tmp_path, capsys):
    (tmp_path / "sources.txt").write_bytes((GOLDEN / "src-weights-seed" / "sources.txt").read_bytes())
    args = json.loads((GOLDEN / "src-weights-seed" / "args.json").read_text())
    code, out, _ = run_cli(capsys, ["bundle", "--topic", "live", "--py-cmd", NB_C_BIN, "--", *args], tmp_path)
    assert code == exitcodes.PASS, out
    m = json.loads((only_bundle(tmp_path / "reports") / "metrics.json").read_text())
    assert m["metrics"]["max_abs_diff"] == 0 and m["metrics"]["corr"] == 1.0
