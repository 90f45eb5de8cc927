"""The command line: files byte-identical to the C program's, one-line errors, help."""

import os
import subprocess
import sys

import golden
import numpy as np
import pytest

CASES = {c["id"]: c for c in golden.load_cases()}
BASE = [
    "-cell",
    "100",
    "100",
    "100",
    "90",
    "90",
    "90",
    "-default_F",
    "100",
    "-N",
    "5",
    "-detpixels",
    "24",
    "-noprogress",
]


@pytest.mark.parametrize("case_id", [cid for cid, c in CASES.items() if c.get("keep")])
def test_smv_pgm_noise_files_identical_to_c(case_id, tmp_path):
    case = CASES[case_id]
    golden.run_nbjax(case, tmp_path)
    kept = case.get("keep", [])
    assert kept
    for name in kept:
        ours, theirs = (tmp_path / name).read_bytes(), (case["dir"] / name).read_bytes()
        assert len(ours) == len(theirs), name
        if name.endswith(".img"):
            header = theirs.index(b"}\f") + 2  # 512 bytes, unless C's text overflowed it
            header = max(header, 512)
            assert ours[:header] == theirs[:header], f"{name} header differs"
            a, b = np.frombuffer(ours[header:], "<u2").astype(int), np.frombuffer(theirs[header:], "<u2").astype(int)
            assert np.max(np.abs(a - b)) <= 1, name
            if "noise" in name:
                assert np.array_equal(a, b), name
        else:
            assert ours == theirs, name


def _dir(path):
    path.mkdir()
    return path


def _cli(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "nbjax", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def _assert_one_line_error(proc, *words):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("nbjax: error:")]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_inputs_give_one_line_errors(tmp_path):
    (tmp_path / "comment.txt").write_text("# X Y Z\n-1 0 0 1 1e-10\n")
    (tmp_path / "bad.hkl").write_text("h k l F\n1 2 3 40\n")
    cases = [
        (BASE + ["-hkl", "missing.hkl"], ["missing.hkl"]),
        (BASE + ["-sourcefile", "comment.txt"], ["comment.txt"]),
        (BASE + ["-hkl", "bad.hkl"], ["bad.hkl"]),
        (BASE + ["-distance", "nan"], ["-distance"]),
        (BASE + ["-lambda", "abc"], ["-lambda"]),
        (BASE + ["-beam_vector", "0", "0", "0"], ["-beam_vector"]),
        (BASE + ["-fdet_vector", "0", "1", "0", "-sdet_vector", "0", "1", "0"], ["parallel"]),
        (BASE + ["-detpixels", "100000000"], ["detector size"]),
        (BASE + ["-divsteps", "1"], ["divergence grid"]),
        (BASE + ["-floatfile", str(tmp_path / "no" / "such" / "dir.bin")], ["dir.bin"]),
    ]
    for args, words in cases:
        _assert_one_line_error(_cli(args, tmp_path), *words)
    assert not (tmp_path / "no").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_crystal_exits_9_like_c(tmp_path):
    proc = _cli(["-default_F", "100", "-detpixels", "16"], tmp_path)
    assert proc.returncode == 9
    assert "usage: nbjax" in proc.stdout and "-cell" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_quirks_that_change_the_result_are_announced(tmp_path):
    def quirk_lines(extra):
        proc = _cli(BASE + extra + ["-nonoise", "-nopgm"], tmp_path)
        assert proc.returncode == 0, proc.stderr
        return "\n".join(line for line in proc.stderr.splitlines() if line.startswith("nbjax: warning: quirk:"))

    text = quirk_lines(["-oversample", "2", "-twotheta", "3", "-twotheta_axis", "0", "0", "-1"])
    for words in ("first sub-pixel", "-twotheta_axis also fires -twotheta: two-theta is now 0 deg"):
        assert words in text, text
    assert "distance is corrected" not in text  # two-theta ended at 0, so the ratio quirk is moot
    text = quirk_lines(["-oversample", "1", "-twotheta", "3", "-pivot", "sample"])
    assert "MOSFLM convention, as in nanoBragg: -pivot" in text and "distance is corrected" in text, text
    assert "first sub-pixel" not in text


def test_help_and_unknown_flags(tmp_path):
    proc = _cli(["-h"], tmp_path)
    assert proc.returncode == 0 and "-detpixels" in proc.stdout and "-precision" in proc.stdout
    proc = _cli(BASE + ["-frobnicate", "-floatfile", "f.bin", "-nonoise", "-nopgm"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "unknown flag -frobnicate" in proc.stderr
    assert (tmp_path / "f.bin").stat().st_size == 24 * 24 * 4


def test_weights_ignored_in_c_mode_and_honoured_in_physical(tmp_path):
    """src-weights-seed vs src-weights-equal: C ignores the weight column (quirk D2); so does
    nbjax by default, with a warning; -physical honours the weights."""
    seed, equal = CASES["src-weights-seed"], CASES["src-weights-equal"]
    a, _, err = golden.run_nbjax(seed, _dir(tmp_path / "a"))
    b, _, _ = golden.run_nbjax(equal, _dir(tmp_path / "b"))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)  # two runs: equal up to rounding on any CPU
    assert "weights differ" in err
    pa, _, _ = golden.run_nbjax(seed, _dir(tmp_path / "pa"), extra=["-physical"])
    pb, _, _ = golden.run_nbjax(equal, _dir(tmp_path / "pb"), extra=["-physical"])
    assert not np.allclose(pa, pb)


def test_fdump_written_then_read_back_gives_c_image(tmp_path):
    """With -hkl the C program writes Fdump.bin; without -hkl it reads it back.  Both runs
    must give the C image of hkl-pattern."""
    case = CASES["hkl-pattern"]
    first, _, _ = golden.run_nbjax(case, tmp_path)
    assert (tmp_path / "Fdump.bin").exists()
    args = list(case["args"])
    i = args.index("-hkl")
    again = dict(case, args=args[:i] + args[i + 2 :], files={})
    second, out, _ = golden.run_nbjax(again, tmp_path)
    assert "reading Fs from Fdump.bin" in out
    c = golden.c_image(case)
    assert np.array_equal(first, second)  # the same program on the same (exactly stored) Fs
    assert golden.metrics(c, first)["max_rel"] <= 1e-5  # as the golden tests: not bit for bit across CPUs


def test_fast_noise_has_poisson_statistics(tmp_path):
    """-fastnoise: not C's stream, but the same law: total counts within 5 sigma of the mean."""
    proc = _cli(
        BASE[:-3]
        + [
            "-detpixels",
            "64",
            "-noprogress",
            "-fastnoise",
            "-nopgm",
            "-floatfile",
            "f.bin",
            "-noisefile",
            "n.img",
            "-adc",
            "0",
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    mean = np.fromfile(tmp_path / "f.bin", "<f4").astype(float)
    counts = np.frombuffer((tmp_path / "n.img").read_bytes()[512:], "<u2").astype(float)
    assert abs(counts.sum() - mean.sum()) < 5 * np.sqrt(mean.sum())
    assert not np.array_equal(counts, np.round(mean))


def test_process_exit_keeps_every_output(tmp_path):
    """The console entry asks for host devices (here 3) and ends with os._exit (no interpreter
    or JAX tear-down): its piped stdout, stderr and files are complete, and equal to a
    one-device in-process run's (the run's statistics lines, and the float image, SMV and
    noise files byte for byte, with the 9 tiles split over the 3 devices)."""
    import contextlib
    import io

    from nbjax.cli.main import run

    args = BASE + ["-tile", "64", "-floatfile", "f.bin", "-intfile", "i.img", "-noisefile", "n.img", "-seed", "7"]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | {"NBJAX_HOST_DEVICES": "3"}
    proc = _cli(args, _dir(tmp_path / "process"), env=env)
    assert proc.returncode == 0, proc.stderr
    inproc = _dir(tmp_path / "inproc")
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(inproc)
    try:
        with contextlib.redirect_stdout(out):
            assert run(args, out=out, err=err) == 0
    finally:
        os.chdir(old)
    assert proc.stdout.splitlines()[-4:] == out.getvalue().splitlines()[-4:] and "intfile_scale" in proc.stdout
    assert proc.stderr == err.getvalue()
    for name in ("f.bin", "i.img", "n.img"):
        assert (tmp_path / "process" / name).read_bytes() == (inproc / name).read_bytes(), name


def test_host_devices_requested_before_jax_starts(tmp_path):
    """nbjax.cpu_devices.request: one XLA host device per usable core by default, N with
    NBJAX_HOST_DEVICES, never over a user's own XLA_FLAGS setting or once JAX is imported."""
    script = (
        "import os, sys\n"
        "from nbjax import cpu_devices\n"
        "asked = cpu_devices.request()\n"
        "import jax\n"
        "print(asked, len(jax.devices('cpu')), cpu_devices.request(), cpu_devices.usable_cores())\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "NBJAX_HOST_DEVICES")}

    def child(**env):
        out = subprocess.run(
            [sys.executable, "-c", script], env=base | env, capture_output=True, text=True, timeout=120, check=True
        )
        return out.stdout.split()

    asked, count, again, cores = child(NBJAX_HOST_DEVICES="3")
    assert (asked, count, again) == ("3", "3", "None")
    asked, count, _, cores = child()
    assert count == cores and asked == ("None" if cores == "1" else cores)
    assert child(XLA_FLAGS="--xla_force_host_platform_device_count=2", NBJAX_HOST_DEVICES="3")[:2] == ["None", "2"]
    assert child(NBJAX_HOST_DEVICES="1")[:2] == ["None", "1"]
