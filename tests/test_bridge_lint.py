"""Tests of ``nbjax-bridge lint``: inputs and argv the reference C program mishandles."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

from nbjax_bridge import cflags, cli, ctext, exitcodes, lint

GOLDEN = Path(__file__).parent / "data" / "c_golden"
BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-detpixels", "32"]


def codes(findings, severity=None):
    return {f.code for f in findings if severity is None or f.severity == severity}


def lint_sources(tmp_path, content: bytes, extra=()):
    (tmp_path / "s.txt").write_bytes(content)
    return lint.lint(BASE + ["-sourcefile", "s.txt", *extra], tmp_path)


# ----------------------------------------------------------------------------- source files


def test_clean_source_file_has_no_findings(tmp_path):
    assert lint_sources(tmp_path, b"-10 0 0 1 1e-10\n-10 0.001 0 1 1e-10\n") == []


def test_comment_line_makes_nan_image(tmp_path):
    f = lint_sources(tmp_path, b"# X Y Z I lambda\n-10 0 0 1 1e-10\n")
    assert "source_comment_line" in codes(f, "error")
    assert "NaN" in next(x for x in f if x.code == "source_comment_line").message
    f = lint_sources(tmp_path, b"-10 0 0 1 1e-10\nsource two\n")
    assert codes(f, "error") == {"source_nonnumeric"}


def test_crlf_short_lines_and_blank_crlf_line(tmp_path):
    assert "source_crlf_short_line" in codes(lint_sources(tmp_path, b"-10 0 0\r\n"), "error")
    assert "source_crlf_short_line" in codes(lint_sources(tmp_path, b"-10 0 0\n\r\n"), "error")
    assert lint_sources(tmp_path, b"-10 0 0 1 1e-10\r\n") == []  # 5 columns parse fine


def test_missing_final_newline_on_short_last_line(tmp_path):
    f = lint_sources(tmp_path, b"-10 0 0 1 1e-10\n-10 0.001 0")
    assert codes(f, "error") == {"source_no_final_newline"}
    assert "line 2" in f[0].message
    assert lint_sources(tmp_path, b"-10 0 0 1 1e-10") == []  # complete line: fine


def test_wavelength_in_angstrom(tmp_path):
    f = lint_sources(tmp_path, b"-10 0 0 1 1.0\n")
    assert codes(f) == {"source_lambda_units"} and f[0].severity == "warn"
    f = lint_sources(tmp_path, b"-10 0 0 1 2e-10\n")
    assert codes(f) == {"source_lambda_column"} and f[0].severity == "info"


def test_unequal_weights_are_ignored_by_c(tmp_path):
    f = lint_sources(tmp_path, b"-10 0 0 1.0 1e-10\n-10 0.001 0 0.2 1e-10\n")
    assert codes(f) == {"source_weights_ignored"}


def test_source_direction_per_convention(tmp_path):
    along_z = b"0 0 -10 1 1e-10\n"
    assert "source_direction" in codes(lint_sources(tmp_path, along_z))  # MOSFLM beam is +x
    assert "source_direction" not in codes(lint_sources(tmp_path, along_z, ["-xds"]))
    assert "source_direction" not in codes(lint_sources(tmp_path, along_z, ["-adxv"]))
    f = lint_sources(tmp_path, b"-10 0 0 1 1e-10\n", ["-dials"])
    assert "source_direction" in codes(f) and "DIALS" in f[0].message
    # CUSTOM: the given beam vector
    f = lint_sources(tmp_path, b"0 -10 0 1 1e-10\n", ["-beam_vector", "0", "1", "0"])
    assert "source_direction" not in codes(f)


def test_source_at_origin_and_empty_file(tmp_path):
    assert codes(lint_sources(tmp_path, b"0 0 0 1 1e-10\n"), "error") == {"source_degenerate"}
    assert codes(lint_sources(tmp_path, b"\n\n"), "error") == {"source_empty"}


def test_c_source_reader_simulation():
    nan = math.nan
    assert ctext.parse_source_line("-10 0 0\n")[:3] == [-10.0, 0.0, 0.0]
    assert all(math.isnan(v) for v in ctext.parse_source_line("-10 0 0\n")[3:])
    assert ctext.parse_source_line("-10 0 0\r\n") == [-10.0, 0.0, 0.0, 0.0, 0.0]
    assert ctext.parse_source_line("-10 0 0") == [-10.0, 0.0, 0.0, 0.0, 0.0]
    assert ctext.parse_source_line("  ,;\n") is None
    assert ctext.parse_source_line("1,2;3:4!5 6\n") == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert ctext.c_atof("1e-10abc") == 1e-10 and ctext.c_atof("#") == 0.0
    assert nan != nan  # (NaN means "missing" in the simulation)


# ----------------------------------------------------------------------------- HKL files


def test_hkl_five_columns_is_error(tmp_path):
    (tmp_path / "F.hkl").write_text("0 0 0 100 1\n1 0 0 50 1\n")
    f = lint.lint(["-hkl", "F.hkl", "-cell", "100", "100", "100", "90", "90", "90"], tmp_path)
    assert codes(f, "error") == {"hkl_columns"}


def test_hkl_header_line_is_error_and_later_comment_truncates(tmp_path):
    (tmp_path / "F.hkl").write_text("# h k l F\n0 0 0 100\n")
    f = lint.lint(["-hkl", "F.hkl", "-cell", "100"], tmp_path)
    assert codes(f, "error") == {"hkl_header"} and "exits 9" in f[0].message
    (tmp_path / "G.hkl").write_text("0 0 0 100\n# more\n1 0 0 50\n")
    f = lint.lint(["-hkl", "G.hkl", "-cell", "100"], tmp_path)
    assert codes(f) == {"hkl_truncated"}
    (tmp_path / "H.hkl").write_text("0 0 0 100\n1 0 0 50\n")
    assert lint.lint(["-hkl", "H.hkl", "-cell", "100"], tmp_path) == []


# ----------------------------------------------------------------------------- argv


def test_twotheta_axis_collision():
    f = lint.lint(BASE + ["-twotheta", "5", "-twotheta_axis", "0", "0", "-1"])
    (x,) = [x for x in f if x.code == "twotheta_axis_sets_twotheta"]
    assert "2theta = 0 deg" in x.message


def test_misset_seed_collision_and_cancelled_random():
    f = lint.lint(BASE + ["-misset", "random", "-misset_seed", "12345", "-floatfile", "x.bin"])
    (x,) = [x for x in f if x.code == "misset_seed_fires_misset"]
    assert "12345" in x.message and "cancels" in x.message
    assert "random_misset_unseeded" not in codes(f)
    # not enough tokens after it yet: still warned (appending -floatfile makes it fire)
    assert "misset_seed_fires_misset" in codes(lint.lint(BASE + ["-misset_seed", "5"]))
    assert "random_misset_unseeded" in codes(lint.lint(BASE + ["-misset", "random"]))


def test_dump_pixel_is_dump():
    f = lint.lint(BASE + ["-dump_pixel", "10", "20"])
    assert "dump_pixel_is_dump" in codes(f, "warn")


def test_flags_ignored_by_convention():
    assert "pivot_ignored" in codes(lint.lint(BASE + ["-pivot", "sample"]))
    assert "pivot_ignored" in codes(lint.lint(BASE + ["-xds", "-pivot", "beam"]))
    assert "pivot_ignored" not in codes(lint.lint(BASE + ["-fdet_vector", "0", "0", "1", "-pivot", "sample"]))
    assert "close_ignored" in codes(lint.lint(BASE + ["-Xclose", "5"]))
    assert "orgxy_ignored" in codes(lint.lint(BASE + ["-ORGX", "40"]))
    assert "orgxy_ignored" not in codes(lint.lint(BASE + ["-xds", "-ORGX", "40"]))
    assert "orgxy_ignored" not in codes(lint.lint(BASE + ["-dials", "-ORGX", "40"]))
    assert "pix0_ignored" in codes(lint.lint(BASE + ["-pix0_vector", "0.1", "0", "0"]))


def test_unknown_flags_and_exact_length_handlers():
    f = lint.lint(BASE + ["-trace_pixel", "1", "2", "-detpixelsX", "5", "-phix", "1", "-Nx", "2"])
    unknown = [x.message.split()[0] for x in f if x.code == "unknown_flag"]
    assert unknown == ["-trace_pixel", "-detpixelsX", "-phix", "-Nx"]
    ok = BASE + [
        "-phi",
        "1",
        "-phistep",
        "0.1",
        "-phisteps",
        "2",
        "-detsize",
        "10",
        "-polar",
        "1",
        "-hdivstep",
        "0.1",
        "-vdivstep",
        "0.1",
        "-detector_thick",
        "100",
        "-Q",
        "q.txt",
    ]
    assert "unknown_flag" not in codes(lint.lint(ok))
    # a token that merely contains a pattern is accepted (substring rule)
    f = lint.lint(BASE + ["-wavelength", "1.0"])
    assert codes(f) == {"substring_alias"} and "-lambda" in f[0].message
    assert cflags.parse(["-5", "-1e-3"]).unknown == []  # negative numbers are not flags


def test_flag_without_values_is_ignored():
    f = lint.lint(BASE + ["-distance"])
    assert "missing_values" in codes(f)


def test_missing_required_inputs(tmp_path):
    f = lint.lint(["-cell", "100", "100", "100", "90", "90", "90"], tmp_path)
    assert codes(f, "error") == {"no_structure_factors"}
    f = lint.lint(["-default_F", "1"], tmp_path)
    assert codes(f, "error") == {"no_cell"}
    f = lint.lint(BASE + ["-hkl", "nope.hkl"], tmp_path)
    assert "missing_input" in codes(f, "error")


def test_phi_zero_reuse_warning():
    assert "phi_zero_reuse" in codes(lint.lint(BASE + ["-phi", "0", "-osc", "3", "-phisteps", "3"]))
    assert "phi_zero_reuse" not in codes(lint.lint(BASE + ["-phi", "1e-12", "-osc", "3", "-phisteps", "3"]))
    assert "phi_zero_reuse" not in codes(lint.lint(BASE))


def test_golden_cases_have_no_errors():
    """C ran fine on every golden case, so the linter must not predict failure for any."""
    cases = tomllib.loads((GOLDEN / "cases.toml").read_text())["case"]
    for case in cases:
        f = lint.lint(case["args"] + ["-floatfile", "c_float.bin"], GOLDEN / case["id"])
        assert not lint.has_errors(f), (case["id"], [x.line() for x in f])
    by_id = {c["id"]: c for c in cases}
    seed = lint.lint(by_id["src-weights-seed"]["args"], GOLDEN / "src-weights-seed")
    assert {"source_weights_ignored", "source_direction"} <= codes(seed)
    quirk = lint.lint(by_id["quirk-misset-seed-collision"]["args"] + ["-floatfile", "c_float.bin"])
    assert "misset_seed_fires_misset" in codes(quirk)


# ----------------------------------------------------------------------------- CLI


def test_lint_cli_exit_codes_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.txt").write_text("# comment\n-10 0 0 1 1e-10\n")
    assert cli.main(["lint", *BASE, "-sourcefile", "s.txt"]) == exitcodes.LINT_ERRORS
    out = capsys.readouterr().out
    assert "C will fail on this input" in out and "error source_comment_line" in out
    assert cli.main(["lint", "--", *BASE]) == exitcodes.PASS
    capsys.readouterr()
    assert cli.main(["lint", "--json", *BASE, "-pivot", "sample"]) == exitcodes.PASS
    data = json.loads(capsys.readouterr().out)
    assert data == [{"severity": "warn", "code": "pivot_ignored", "message": data[0]["message"]}]
    assert cli.main(["lint"]) == exitcodes.USAGE
