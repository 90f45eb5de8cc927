"""Bad and extreme command lines (issue 11): one line ``nbjax: error: ...`` naming the flag, file
or value, a non-zero exit (9 where the C program exits 9), no traceback, and no file written,
changed or left half-written; warnings where nbjax follows a silent C substitution.

Most runs go through the console entry point in-process (``main``), in a temporary working
folder holding pre-existing output files whose bytes must survive every failed run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from nbjax.cli.main import main
from nbjax.setup import workload

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
OUTPUTS = ("floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The working folder, with a pre-existing file under every default output name."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBJAX_CACHE_DIR", "off")
    for name in OUTPUTS:
        (tmp_path / name).write_bytes(b"old " + name.encode())
    return tmp_path


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def nbjax(args, capsys):
    """(exit status, stdout, stderr) of ``nbjax ARGS`` run through the console entry point."""
    with pytest.raises(SystemExit) as stop:
        main(list(args))
    captured = capsys.readouterr()
    return stop.value.code, captured.out, captured.err


def fails(args, capsys, folder, message, code=2):
    """The run fails with exactly ``nbjax: error: <message>`` and exit ``code``, and leaves the
    folder exactly as it was (no new, changed or temporary file)."""
    before = _snapshot(folder)
    status, out, err = nbjax(args, capsys)
    errors = [line for line in err.splitlines() if line.startswith("nbjax: error:")]
    assert errors == [f"nbjax: error: {message}"], err
    assert status == code, err
    assert "Traceback" not in err and "internal error" not in err
    assert _snapshot(folder) == before
    return err


def warns(args, capsys, *warnings):
    status, out, err = nbjax(args + ["-nonoise", "-nopgm"], capsys)
    assert status == 0, err
    for w in warnings:
        assert f"nbjax: warning: {w}" in err.splitlines(), err
    return out, err


def _smv(path, width, height, **header):
    text = "{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
    text += f"SIZE1={width};\nSIZE2={height};\n" + "".join(f"{k}={v};\n" for k, v in header.items()) + "}\f"
    path.write_bytes(text.encode().ljust(512, b" ") + np.ones((height, width), "<u2").tobytes())


# ---------------------------------------------------------------------------- 1. missing values


@pytest.mark.parametrize(
    "tail, message",
    [
        (
            ["-distance"],
            "-distance needs 1 value, got none: nanoBragg would silently ignore the flag and use its default; "
            "give the value",
        ),
        (
            ["-floatfile"],
            "-floatfile needs 1 value, got none: nanoBragg would silently ignore the flag and use its default; "
            "give the value",
        ),
        (
            ["-roi", "1", "2"],
            "-roi needs 4 values, got 2: nanoBragg would silently ignore the flag and use its default; give the values",
        ),
        (
            ["-misset", "10", "20"],
            "-misset needs 3 values, got 2: nanoBragg would silently ignore the flag and use its default; give "
            "the values",
        ),
        (
            ["-mask"],
            "-mask needs 1 value, got none: nanoBragg would silently ignore the flag and use its default; give "
            "the value",
        ),
        (
            ["-curved_det"],
            "-curved_det must not be the last argument: nanoBragg only reads it when another argument follows, "
            "and silently ignores it otherwise; move it before another flag",
        ),
    ],
)
def test_flag_without_its_values_stops(tail, message, folder, capsys):
    fails(BASE + tail, capsys, folder, message)


def test_collision_with_enough_values_for_one_handler_is_not_an_error(folder, capsys):
    """-misset_seed also matches C's 3-value -misset handler; at the end of argv only the
    1-value handlers fire, as in C, and that is no missing value."""
    status, _, err = nbjax(BASE + ["-nonoise", "-nopgm", "-misset_seed", "4"], capsys)
    assert status == 0, err


# ---------------------------------------------------------------------------- 2. no internal errors


def test_zero_and_negative_energy(folder, capsys):
    fails(BASE + ["-energy", "0"], capsys, folder, "-energy: the photon energy must be positive, got 0 eV")
    fails(BASE + ["-energy", "-5"], capsys, folder, "-energy: the photon energy must be positive, got -5 eV")


def test_beam_in_the_detector_plane(folder, capsys):
    message = (
        "the beam lies in the detector plane (beam vector . detector normal = 0, after -detector_rotx/y/z): it never "
        "reaches the detector; check -beam_vector, -odet_vector/-fdet_vector/-sdet_vector and the rotations"
    )
    fails(BASE + ["-beam_vector", "0", "0", "1"], capsys, folder, message)
    fails(BASE + ["-beam_vector", "0", "1", "1"], capsys, folder, message)


def test_cell_without_volume(folder, capsys):
    fails(
        BASE[:1] + ["100", "100", "100", "180", "90", "90"] + BASE[7:],
        capsys,
        folder,
        "-cell: the angles 180 90 90 deg describe no unit cell and give it no volume (nanoBragg would render "
        "a NaN image)",
    )


def test_singular_matrix(folder, capsys):
    (folder / "zero.mat").write_text("0 0 0\n0 0 0\n0 0 0\n")
    fails(
        BASE + ["-mat", "zero.mat"],
        capsys,
        folder,
        "zero.mat: the A matrix is singular (determinant 0): its columns a*, b*, c* span no unit cell "
        "(nanoBragg would render a NaN image)",
    )


def test_mask_of_another_size(folder, capsys):
    _smv(folder / "mask.img", 16, 16, PIXEL_SIZE=0.1)
    fails(
        BASE + ["-mask", "mask.img"],
        capsys,
        folder,
        "-mask mask.img: the mask is 16x16 pixels but the detector is 24x24 (from -detpixels); give a mask "
        "of the detector's size",
    )


def test_mask_is_a_known_flag(folder, capsys):
    """The mask is read by the pre-pass: no 'unknown flag -mask' warning, and its zeros apply."""
    mask = np.ones((24, 24), "<u2")
    mask[:, :12] = 0
    text = "{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
    text += "SIZE1=24;\nSIZE2=24;\nPIXEL_SIZE=0.1;\n}\f"
    (folder / "mask.img").write_bytes(text.encode().ljust(512, b" ") + mask.tobytes())
    status, out, err = nbjax(BASE + ["-mask", "mask.img", "-nonoise", "-nopgm", "-floatfile", "f.bin"], capsys)
    assert status == 0, err
    assert "unknown flag" not in err
    image = np.fromfile(folder / "f.bin", "<f4").reshape(24, 24)
    assert not image[:, :12].any() and image[:, 12:].all()


# HKL files: exit 9 exactly where the C program exits 9 ("not enough HKL indices": its counting
# pass leaves an index range negative), 2 where nbjax refuses a file that C reads (or is killed
# on); checked against the C program built from upstream nanoBragg.c.
C_REFUSES_HKL = {
    "missing file": (None, "unable to open x.hkl: No such file or directory"),
    "empty file": ("", "not enough HKL indices in x.hkl"),
    "blank lines only": ("\n\n", "not enough HKL indices in x.hkl"),
    "leading comment line": ("# h k l F\n0 0 0 1\n", "x.hkl line 1: '#' is not a number"),
    "text only": ("hello\n", "x.hkl line 1: 'hello' is not a number"),
    "one short line": ("0 0 0\n", "x.hkl line 1: expected h k l F, found 3 column(s)"),
    "non-number among the first four": ("0 0 0 x\n", "x.hkl line 1: 'x' is not a number"),
    "number prefix among the first four": ("0.5x 0 0 1\n", "x.hkl line 1: '0.5x' is not a number"),
    "NaN index in every entry": ("nan 0 0 1\nnan 1 0 1\n", "x.hkl line 1: 'nan' is not a finite number"),
    "index above a C int": ("0 0 0 1\n0 5e9 0 1\n", "x.hkl line 2: k = 5e+09 does not fit a C int"),
    "index below a C int": ("0 -5e9 0 1\n0 0 0 1\n", "x.hkl line 1: k = -5e+09 does not fit a C int"),
}
C_READS_HKL = {  # C reads them (wrongly), or runs out of memory: nbjax refuses them with exit 2
    "comment after the first entry": ("0 0 0 1\n# c\n1 0 0 2\n", "x.hkl line 2: '#' is not a number"),
    "short first line, more after": ("0 0 0\n1 0 0 5\n", "x.hkl line 1: expected h k l F, found 3 column(s)"),
    "NaN structure factor": ("0 0 0 nan\n", "x.hkl line 1: 'nan' is not a finite number"),
    "NaN index in one entry": ("nan 0 0 1\n1 1 0 1\n", "x.hkl line 1: 'nan' is not a finite number"),
    "infinite index": ("inf 0 0 1\n", "x.hkl line 1: 'inf' is not a finite number"),
    "every index above a C int": ("0 5e9 0 1\n", "x.hkl line 1: k = 5e+09 does not fit a C int"),
    "text in a fifth column": ("0 0 0 1 x\n", "x.hkl line 1: 'x' is not a number"),
    "grid too large": (
        "0 0 0 1\n0 100000 0 1\n-100000 0 0 1\n",
        "x.hkl: HKL index ranges (-100000, 0, 0, 100000, 0, 0) are too large",
    ),
}


@pytest.mark.parametrize(
    "text, message, code",
    [(*case, 9) for case in C_REFUSES_HKL.values()] + [(*case, 2) for case in C_READS_HKL.values()],
    ids=list(C_REFUSES_HKL) + list(C_READS_HKL),
)
def test_hkl_file_refusals_exit_as_c_does(text, message, code, folder, capsys):
    if text is not None:
        (folder / "x.hkl").write_text(text)
    fails(BASE + ["-hkl", "x.hkl"], capsys, folder, message, code=code)


# ---------------------------------------------------------------------------- 3. sizes, substitutions, workload


def test_zero_pixel_count_follows_c_with_a_warning(folder, capsys):
    warns(
        BASE + ["-detpixels", "0", "-roi", "0", "3", "0", "3", "-floatfile", "f.bin"],
        capsys,
        "-detpixels 0: nanoBragg takes a count of 0 as not given, and so does nbjax: the detector size then comes from "
        "-detsize/-pixel (default 1024x1024 pixels)",
    )
    assert (folder / "f.bin").stat().st_size == 1024 * 1024 * 4


def test_impossible_angles_follow_c_with_a_warning(folder, capsys):
    out, _ = warns(
        BASE[:1] + ["100", "100", "100", "170", "170", "170"] + BASE[7:],
        capsys,
        "-cell: the angles 170 170 170 deg describe no unit cell (each must be below the sum of the other two, "
        "all three below 360); like nanoBragg, nbjax renders the cell its formulas give: 100 100 100 90 109.89 131.677",
    )
    assert "Unit Cell: 100 100 100 90 109.89 131.677" in out  # the C program's own line (checked against it)


def test_size_errors_name_their_source(folder, capsys):
    fails(
        BASE + ["-detpixels", "-4"],
        capsys,
        folder,
        "-detpixels: detector size -4x-4 pixels is not possible "
        "(1 to 268435456 pixels; -0.4x-0.4 mm at 0.1 mm per pixel)",
    )
    fails(
        BASE[:-3] + ["-detsize", "0", "-noprogress"],
        capsys,
        folder,
        "-detsize: detector size 0x0 pixels is not possible (1 to 268435456 pixels; 0x0 mm at 0.1 mm per pixel)",
    )


def test_zero_pixel_size_in_an_img_header_names_the_file(folder, capsys):
    _smv(folder / "frame.img", 24, 24, PIXEL_SIZE=0)
    fails(
        BASE + ["-img", "frame.img"],
        capsys,
        folder,
        "frame.img: the SMV header says PIXEL_SIZE=0, which is not positive; fix the header or give -pixel",
    )
    status, _, err = nbjax(BASE + ["-img", "frame.img", "-pixel", "0.1", "-nonoise", "-nopgm"], capsys)
    assert status == 0, err  # a flag after it overrides the header, as in C


@pytest.fixture
def ci_machine(monkeypatch):
    """The limits as on the CI machine (24 GB, CPU speed), whatever this machine is."""
    monkeypatch.setattr(workload, "machine_memory", lambda: 24 * 10**9)
    monkeypatch.setattr(workload, "ACCELERATOR_SAMPLES_PER_SECOND", workload.CPU_SAMPLES_PER_SECOND)


def test_absurd_work_is_refused_with_its_estimate(folder, capsys, ci_machine):
    """Too long: refused unless -force, the estimate in the message.  Too big for the memory
    (16-pixel tiles of 9e6 samples each): refused even with -force."""
    big = BASE[:-3] + ["-detpixels", "1024", "-noprogress"]
    for oversample, words in (
        (
            "300",
            "this run would take too long: 1048576 pixels x 300^2 sub-pixels x 1 layers x 1 sources x "
            "1 phi steps x 1 mosaic domains = 9.44e+10 samples, about ",
        ),
        ("3000", "this run needs more memory than the machine has to spare ("),
    ):
        status, _, err = nbjax(big + ["-force"] * (oversample == "3000") + ["-oversample", oversample], capsys)
        lines = [x for x in err.splitlines() if x.startswith("nbjax: error:")]
        assert status == 2 and len(lines) == 1, err
        assert lines[0].startswith(f"nbjax: error: -oversample {oversample}: " + words), err
        assert ("give -force to run it anyway" in lines[0]) == (oversample == "300"), err
    assert _snapshot(folder) == {n: b"old " + n.encode() for n in OUTPUTS}


def test_absurd_source_and_domain_counts_are_refused_before_they_are_built(folder, capsys, ci_machine):
    for extra, words in (
        (["-divergence", "1", "-divsteps", "100000"], "10000000000 sources"),
        (["-mosaic", "1", "-mosaic_dom", "50000000"], "50000000 mosaic domains"),
    ):
        status, _, err = nbjax(BASE + extra, capsys)
        assert status == 2 and words in err and f"nbjax: error: {extra[2]} {extra[3]}: this run" in err, err


MEMORY_REFUSAL = "this run needs more memory than the machine has to spare ("


@pytest.mark.parametrize(
    "extra, named",
    [
        (["-mosaic", "1", "-mosaic_dom", "1e12"], "-mosaic_dom 1e12"),
        (["-mosaic", "1", "-mosaic_domains", "1e12"], "-mosaic_domains 1e12"),  # the spelling the user gave
        (["-mosaic", "1", "-mosaic_dom", "99999999999999999999"], "-mosaic_dom 99999999999999999999"),  # > int64
        (["-divergence", "1", "-divsteps", "1e9"], "-divsteps 1e9"),
        (["-divergence", "1", "-hdivsteps", "1e9"], "-hdivsteps 1e9"),
        (["-divergence", "1", "-vdivsteps", "1e9"], "-vdivsteps 1e9"),
        (["-dispersion", "1", "-dispsteps", "1e9"], "-dispsteps 1e9"),
        (["-divergence", "1", "-hdivstep", "1e-9"], "-hdivstep 1e-9"),  # 2e9 steps of 1e-12 rad
        (["-phisteps", "1e9", "-osc", "1"], "-phisteps 1e9"),
        (["-oversample", "1e5"], "-oversample 1e5"),
        (  # no count alone is too many: every one above 1 is named
            ["-mosaic", "1", "-mosaic_dom", "1e6", "-divergence", "1", "-divsteps", "1e3"],
            "-divsteps 1e3, -mosaic_dom 1e6",
        ),
    ],
)
def test_absurd_count_refusal_names_the_flag(extra, named, folder, capsys, ci_machine):
    """The refusal of absurd counts (same limits as before) begins with the flag and value that
    asked for them, as typed: one line, exit 2, nothing written."""
    before = _snapshot(folder)
    status, _, err = nbjax(BASE + extra, capsys)
    lines = [line for line in err.splitlines() if line.startswith("nbjax: error:")]
    assert status == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"nbjax: error: {named}: {MEMORY_REFUSAL}"), err
    assert _snapshot(folder) == before


def test_mosaic_domain_count_overflowing_a_double_names_the_flag(folder, capsys):
    fails(BASE + ["-mosaic", "1", "-mosaic_dom", "1e400"], capsys, folder, "-mosaic_dom: value '1e400' is not finite")


def test_negative_mosaic_domain_count_follows_c(folder, capsys):
    """-mosaic_dom -5 is C's "not given": with a spread, C (and nbjax) up it to 10 domains and say so."""
    status, out, err = nbjax(BASE + ["-nonoise", "-nopgm", "-mosaic", "1", "-mosaic_dom", "-5"], capsys)
    assert status == 0, err
    assert "WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains" in out.splitlines()


def test_workload_limits():
    w = workload.Workload(pixels=1024 * 1024, oversample=1000, layers=1, sources=1, phisteps=1, domains=1)
    assert w.samples == 1024 * 1024 * 10**6
    assert w.seconds == pytest.approx(w.samples / workload.CPU_SAMPLES_PER_SECOND + 2 * workload.SETUP_SECONDS_PER_ITEM)
    with pytest.raises(Exception, match="would take too long"):
        workload.check(w, force=False, memory=10**12)
    workload.check(w, force=True, memory=10**12)  # -force runs it
    big = workload.Workload(pixels=16, oversample=10**4, layers=1, sources=1, phisteps=1, domains=1)
    with pytest.raises(Exception, match="more memory than the machine has to spare.*-force cannot help"):
        workload.check(big, force=True, memory=24 * 10**9)


def test_progress_with_eta_on_stderr(folder, capsys):
    status, out, err = nbjax([a for a in BASE if a != "-noprogress"] + ["-nonoise", "-nopgm"], capsys)
    assert status == 0, err
    assert err.splitlines()[-1].startswith("nbjax: 100% done in "), err
    assert "% done" not in out


# ---------------------------------------------------------------------------- 4. outputs


@pytest.mark.parametrize(
    "args, message",
    [
        (["-floatfile", "nodir/f.bin"], "-floatfile 'nodir/f.bin': cannot write there: folder 'nodir' does not exist"),
        (["-floatfile", "."], "-floatfile '.': is a folder, not a file name"),
        (
            ["-intfile", "floatimage.bin/x.img"],
            "-intfile 'floatimage.bin/x.img': cannot write there: 'floatimage.bin' is a file, not a folder",
        ),
        (["-noisefile", "nodir/n.img"], "-noisefile 'nodir/n.img': cannot write there: folder 'nodir' does not exist"),
        (["-pgmfile", "a/b/p.pgm"], "-pgmfile 'a/b/p.pgm': cannot write there: folder 'a' does not exist"),
        (["-floatfile", ""], "-floatfile: the file name is empty"),
    ],
)
def test_unwritable_outputs_exit_9_before_any_work(args, message, folder, capsys):
    """C exits 9 after rendering (and after writing the earlier files); nbjax checks every output
    first, so the pre-existing float, int, PGM and noise files are untouched."""
    fails(BASE + args, capsys, folder, message, code=9)


def _limits(folder):
    """(NAME_MAX, PATH_MAX) of the file system the folder is on, as nbjax reports them."""
    return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX") - 1


LONG_NAME = "a" * 300  # one name over NAME_MAX (255 on Linux file systems)
LONG_PATH = "/".join(["b" * 200] * 25)  # 5024 characters, each part allowed: over PATH_MAX (4096)


@pytest.mark.parametrize("flag", ["-floatfile", "-intfile", "-pgmfile", "-noisefile"])
def test_output_name_too_long_exits_9_before_any_work(flag, folder, capsys):
    """A name the system refuses as too long is an unwritable output (exit 9, nothing written),
    not an internal error; the message names the flag, shows the name cut short and says why."""
    name_max, _ = _limits(folder)
    fails(
        BASE + [flag, LONG_NAME],
        capsys,
        folder,
        f"{flag} '{'a' * 100}'...: the file name is too long (a name of 300 characters in it; the system "
        f"allows {name_max})",
        code=9,
    )


def test_output_path_too_long_exits_9_before_any_work(folder, capsys):
    _, path_max = _limits(folder)
    fails(
        BASE + ["-floatfile", LONG_PATH],
        capsys,
        folder,
        f"-floatfile '{'b' * 100}'...: the file name is too long (5024 characters; the system allows {path_max})",
        code=9,
    )


def test_longest_allowed_output_name_is_written(folder, capsys):
    """A name of exactly NAME_MAX characters is allowed, as in C: the temporary file beside it
    (staging and the folder probe) must not be refused for its longer name."""
    name = "c" * _limits(folder)[0]
    status, _, err = nbjax(BASE + ["-nonoise", "-nopgm", "-floatfile", name], capsys)
    assert status == 0, err
    assert (folder / name).stat().st_size == 24 * 24 * 4
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize(
    "flag, code, verb",
    [
        ("-hkl", 9, "unable to open"),
        ("-mat", 2, "cannot read"),
        ("-matrix", 2, "cannot read"),
        ("-sourcefile", 9, "cannot read"),
        ("-mask", 9, "cannot read"),
        ("-img", 9, "cannot read"),
    ],
)
@pytest.mark.parametrize("name", [LONG_NAME, LONG_PATH], ids=["name", "path"])
def test_input_name_too_long_is_one_line(flag, code, verb, name, folder, capsys):
    name_max, path_max = _limits(folder)
    why = (
        f"a name of 300 characters in it; the system allows {name_max}"
        if name == LONG_NAME
        else f"5024 characters; the system allows {path_max}"
    )
    fails(BASE + [flag, name], capsys, folder, f"{verb} {name[:100]}...: the file name is too long ({why})", code=code)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_read_only_folder(folder, capsys):
    ro = folder / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        fails(
            BASE + ["-floatfile", "ro/f.bin"],
            capsys,
            folder,
            "-floatfile 'ro/f.bin': cannot write in folder 'ro': Permission denied",
            code=9,
        )
    finally:
        ro.chmod(0o755)


def test_read_only_folder_as_root_is_writable_and_says_nothing(folder, capsys):
    """The folder probe asks the operating system: as root a 0555 folder is writable, and the
    run succeeds (as it would for C); as another user it is refused (test above)."""
    ro = folder / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        status, _, err = nbjax(BASE + ["-nonoise", "-nopgm", "-floatfile", "ro/f.bin"], capsys)
        if os.geteuid() == 0:
            assert status == 0 and (ro / "f.bin").stat().st_size == 24 * 24 * 4, err
        else:
            assert status == 9 and not (ro / "f.bin").exists()
    finally:
        ro.chmod(0o755)


def test_a_run_writes_all_its_files_or_none(folder, capsys, monkeypatch):
    """A failure while the files are written (after the pre-check: a full disk, say) leaves every
    earlier file of the run unchanged: the files are staged and renamed only once all are written."""
    from nbjax.errors import NBError
    from nbjax.io import atomic

    real = atomic._stage_bytes

    def disk_full_for_noise(path, data, label):
        if "noise" in str(path):
            raise NBError(f"cannot write {path}: No space left on device", 9)
        return real(path, data, label)

    monkeypatch.setattr(atomic, "_stage_bytes", disk_full_for_noise)
    fails(BASE + ["-seed", "1"], capsys, folder, "cannot write noiseimage.img: No space left on device", code=9)
    monkeypatch.setattr(atomic, "_stage_bytes", real)
    before = _snapshot(folder)
    status, _, err = nbjax(BASE + ["-seed", "1"], capsys)
    assert status == 0, err
    after = _snapshot(folder)
    assert all(after[name] != before[name] for name in OUTPUTS)
    assert sorted(after) == sorted(before)  # no temporary file left


# ---------------------------------------------------------------------------- 5. messages


def test_closed_pipe_is_normal_use(tmp_path):
    proc = subprocess.run(
        f"{sys.executable} -m nbjax -h | head -2", shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.startswith("usage: nbjax")
    assert proc.stderr == ""
    out = subprocess.run(
        f"set -o pipefail; {sys.executable} -m nbjax -h | head -1",
        shell=True,
        executable="/bin/bash",
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and out.stderr == ""
