"""File formats against the reference C program's own files (tests/data/c_golden)."""

import hashlib
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nbjax.errors import NBError
from nbjax.io.cformat import RTD, c_atof, cformat_g
from nbjax.io.fdump import fdump_bytes, read_fdump, write_fdump
from nbjax.io.floatimage import read_float_image, write_float_image
from nbjax.io.hkl import read_hkl
from nbjax.io.matfile import read_mat
from nbjax.io.pgm import auto_pgm_scale, pgm_bytes, write_pgm
from nbjax.io.smv import (
    SMVHeaderValues,
    auto_int_scale,
    format_smv_header,
    header_overflow,
    int_image,
    read_smv,
    value_of,
    write_smv,
)
from nbjax.io.sourcefile import read_source_file

GOLDEN = Path(__file__).parent / "data" / "c_golden"


def _float_image(case: str) -> np.ndarray:
    frame = read_smv(GOLDEN / case / "c_int.img")
    return read_float_image(GOLDEN / case / "c_float.bin", frame.width, frame.height)


def _stdout(case: str) -> str:
    return (GOLDEN / case / "c_stdout.txt").read_text()


def _printed(case: str, key: str) -> str:
    return re.search(rf"^{key} = (\S+)$", _stdout(case), re.M).group(1)


def _c_rmsd(image: np.ndarray) -> float:
    """C's rmsd: sequential double sums over the ROI (here the whole image), N-1 denominator."""
    values = image.astype(np.float64).ravel()
    avg = np.cumsum(values)[-1] / values.size
    return math.sqrt(np.cumsum((values - avg) ** 2)[-1] / (values.size - 1))


# ----------------------------------------------------------------------------- float, int, PGM


def test_float_image_round_trip(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    write_float_image(tmp_path / "f.bin", image)
    assert (tmp_path / "f.bin").read_bytes() == image.astype("<f4").tobytes()
    assert np.array_equal(read_float_image(tmp_path / "f.bin", fpixels=4), image)
    assert read_float_image(GOLDEN / "cubic-64" / "c_float.bin").shape == (64, 64)
    with pytest.raises(NBError, match="not 5x5"):
        read_float_image(tmp_path / "f.bin", 5, 5)
    with pytest.raises(NBError, match="cannot read"):
        read_float_image(tmp_path / "missing.bin")


@pytest.mark.parametrize(
    "case, scale, adc",
    [
        ("io-int-pgm-noise", None, 40.0),
        ("io-scale-adc", 2000.0, 10.0),
        ("io-xds-header", None, 40.0),
        ("quirk-distance-ratio-twotheta", None, 40.0),
    ],
)
def test_int_image_matches_c(case, scale, adc):
    image = _float_image(case)
    if scale is None:
        scale = auto_int_scale(float(image.max()))
    assert cformat_g(scale) == _printed(case, "intfile_scale")
    expected = read_smv(GOLDEN / case / "c_int.img").data
    assert np.array_equal(int_image(image, scale, adc), expected)


def test_int_image_rules():
    image = np.array([[0.0, 1.0, np.nan, 1e9], [-5.0, 2.5, 0.49, 3.0]], dtype=np.float32)
    assert int_image(image, 1.0, 0.0).tolist() == [[0, 1, 0, 65535], [0, 3, 0, 3]]
    assert int_image(image, 1.0, 40.0, roi=(1, 2, 1, 1)).tolist() == [[0, 0, 0, 0], [0, 43, 40, 0]]
    assert auto_int_scale(0.0) == 1.0 and auto_int_scale(110.0) == 500.0


@pytest.mark.parametrize("case, pgm_scale", [("io-int-pgm-noise", None), ("io-scale-adc", 5.0)])
def test_pgm_matches_c(case, pgm_scale, tmp_path):
    image = _float_image(case)
    if pgm_scale is None:
        pgm_scale = auto_pgm_scale(_c_rmsd(image), auto_int_scale(float(image.max())))
    assert cformat_g(pgm_scale) == _printed(case, "pgm_scale")
    expected = (GOLDEN / case / "c_img.pgm").read_bytes()
    assert pgm_bytes(image, pgm_scale) == expected
    write_pgm(tmp_path / "x.pgm", image, pgm_scale)
    assert (tmp_path / "x.pgm").read_bytes() == expected


def test_pgm_rules():
    image = np.array([[1.9, 300.0, np.nan, -1.0]], dtype=np.float32)
    data = pgm_bytes(image, 1.0, roi=(0, 2, 0, 0))
    assert data == b"P5\n4 1\n# pixels scaled by 1\n255\n" + bytes([1, 255, 0, 0])
    assert pgm_bytes(image, 1.0)[-1] == 255  # (unsigned char)(-1.0) wraps, as on x86-64
    assert auto_pgm_scale(0.0, 3.0) == 3.0 and auto_pgm_scale(10.0, 3.0) == 5.0


# ----------------------------------------------------------------------------- SMV

HEADERS = {
    "io-int-pgm-noise": SMVHeaderValues(
        fpixels=64,
        spixels=64,
        pixel_size_m=0.0001,
        distance_m=0.1,
        lambda0_m=1e-10,
        Xbeam_m=0.00325,
        Ybeam_m=0.00325,
        Fbeam_m=0.0033,
        Sbeam_m=0.0033,
        detsize_s_m=0.0064,
        dials_origin_mm=(-3.3, 3.3, -100.0),
        ORGX=33.5,
        ORGY=33.5,
        close_distance_m=0.1,
        phi0_rad=0.0,
        osc_rad=0.0,
        twotheta_rad=0.0,
    ),
    "io-xds-header": SMVHeaderValues(
        fpixels=80,
        spixels=64,
        pixel_size_m=0.0001,
        distance_m=0.1,
        lambda0_m=1e-10,
        Xbeam_m=0.00295,
        Ybeam_m=0.00345,
        Fbeam_m=0.00295,
        Sbeam_m=0.01216557,
        detsize_s_m=0.0064,
        dials_origin_mm=(99.3188, -12.1524, 2.95),
        ORGX=30.0,
        ORGY=35.0,
        close_distance_m=0.1,
        phi0_rad=2 / RTD,
        osc_rad=1 / RTD,
        twotheta_rad=5 / RTD,
    ),
    "quirk-distance-ratio-twotheta": SMVHeaderValues(
        fpixels=96,
        spixels=96,
        pixel_size_m=0.0001,
        distance_m=0.149429,
        lambda0_m=1e-10,
        Xbeam_m=0.00485,
        Ybeam_m=0.00485,
        Fbeam_m=0.00480126,
        Sbeam_m=0.00494975,
        detsize_s_m=0.0096,
        dials_origin_mm=(-4.82556, 4.95551, -149.579),
        ORGX=-209.981,
        ORGY=180.234,
        close_distance_m=0.147159,
        phi0_rad=0.0,
        osc_rad=0.0,
        twotheta_rad=5 / RTD,
    ),
}


@pytest.mark.parametrize("case", sorted(HEADERS))
def test_smv_header_bytes_match_c(case):
    c_bytes = (GOLDEN / case / "c_int.img").read_bytes()
    assert format_smv_header(HEADERS[case]) == c_bytes[:512]
    noise = GOLDEN / case / "c_noise.img"
    if noise.exists():
        assert format_smv_header(HEADERS[case], noise_image=True) == noise.read_bytes()[:512]


def test_smv_header_denzo_signed_zero():
    values = HEADERS["io-int-pgm-noise"]
    zero_beam = replace(values, Sbeam_m=-0.0, Fbeam_m=-0.0)
    assert b"DENZO_X_BEAM=-0;" in format_smv_header(zero_beam)
    assert b"DENZO_X_BEAM=0;" in format_smv_header(zero_beam, noise_image=True)
    # extreme values: C writes the longer text whole (HEADER_BYTES still says 512), and so do we
    huge = replace(
        values,
        dials_origin_mm=(-1.23456e300,) * 3,
        ORGX=-1.5e-300,
        ORGY=-1.5e-300,
        Xbeam_m=-1.5e300,
        Ybeam_m=-1.5e300,
        Fbeam_m=-1.5e300,
        Sbeam_m=-1.5e300,
        phi0_rad=-1.5e300,
    )
    text = format_smv_header(huge)
    assert len(text) > 512 and text.endswith(b"}\f") and header_overflow(huge) == len(text) - 512
    assert header_overflow(values) == 0


def test_read_smv_golden_inputs():
    mask = read_smv(GOLDEN / "mask-header" / "mask.img")
    assert (mask.width, mask.height, mask.header_size, mask.byte_order) == (72, 64, 512, "little_endian")
    expected = np.ones((64, 72), dtype=np.uint16)
    expected[5:20, 10:30] = 0
    assert np.array_equal(mask.data, expected)
    assert [mask.value(k) for k in ("PIXEL_SIZE", "DISTANCE", "WAVELENGTH", "BEAM_CENTER_X", "BEAM_CENTER_Y")] == [
        0.12,
        110.0,
        1.1,
        4.0,
        3.5,
    ]
    assert math.isnan(mask.value("CLOSE_DISTANCE")) and math.isnan(mask.value("ORGX"))

    img = read_smv(GOLDEN / "img-header" / "in.img")
    assert (img.width, img.height) == (64, 80) and (img.data == 5).all()
    assert (img.value("PHI"), img.value("OSC_RANGE"), img.value("DISTANCE")) == (1.0, 0.5, 90.0)


def test_value_of_rules_on_c_header():
    frame = read_smv(GOLDEN / "quirk-distance-ratio-twotheta" / "c_int.img")
    assert frame.data.shape == (96, 96)
    header = frame.header
    assert value_of(header, "DISTANCE") == 147.159  # last occurrence is inside CLOSE_DISTANCE
    assert value_of(header, "CLOSE_DISTANCE") == 147.159
    assert value_of(header, "ORGX") == -209.981  # substring of XDS_ORGX
    assert value_of(header, "PHI") == 0.0 and value_of(header, "TWOTHETA") == 5.0
    assert value_of(header, "BEAMLINE") == 0.0  # atof("fake;")
    assert value_of(header, "fake") == 0.0  # no '=' after the last occurrence
    assert math.isnan(value_of(header, "NOT_A_KEY"))
    assert value_of("A=1;\nA=2;\n", "A") == 2.0
    assert c_atof("  -1.5e3xyz") == -1500.0 and c_atof("abc") == 0.0


def test_read_smv_errors_and_byte_order(tmp_path):
    with pytest.raises(NBError, match="cannot read"):
        read_smv(tmp_path / "missing.img")
    (tmp_path / "short.img").write_bytes(b"{\nHEADER_BYTES=512;\n")
    with pytest.raises(NBError, match="shorter"):
        read_smv(tmp_path / "short.img")
    (tmp_path / "bad.img").write_bytes(b"P5\n" + b" " * 600)
    with pytest.raises(NBError, match="does not look like"):
        read_smv(tmp_path / "bad.img")
    good = (GOLDEN / "io-xds-header" / "c_int.img").read_bytes()
    (tmp_path / "cut.img").write_bytes(good[:-2])
    with pytest.raises(NBError, match="needs"):
        read_smv(tmp_path / "cut.img")
    big = good[:512].replace(b"little_endian", b"big_endian;  ") + _big_endian_pixels(good)
    (tmp_path / "big.img").write_bytes(big)
    frame = read_smv(tmp_path / "big.img")
    assert frame.byte_order == "big_endian"
    assert np.array_equal(frame.data, read_smv(GOLDEN / "io-xds-header" / "c_int.img").data)


def _big_endian_pixels(smv: bytes) -> bytes:
    return np.frombuffer(smv[512:], dtype="<u2").astype(">u2").tobytes()


def test_write_smv_read_by_fabio(tmp_path):
    fabio = pytest.importorskip("fabio")
    values = HEADERS["io-xds-header"]
    pixels = read_smv(GOLDEN / "io-xds-header" / "c_int.img").data
    write_smv(tmp_path / "out.img", values, pixels)
    assert (tmp_path / "out.img").read_bytes() == (GOLDEN / "io-xds-header" / "c_int.img").read_bytes()
    image = fabio.open(str(tmp_path / "out.img"))
    assert (int(image.header["SIZE1"]), int(image.header["SIZE2"])) == (80, 64)
    assert float(image.header["PIXEL_SIZE"]) == 0.1 and float(image.header["DISTANCE"]) == 100.0
    assert float(image.header["WAVELENGTH"]) == 1.0
    assert (float(image.header["BEAM_CENTER_X"]), float(image.header["BEAM_CENTER_Y"])) == (2.95, 3.45)
    assert np.array_equal(np.asarray(image.data), pixels)
    with pytest.raises(NBError, match="does not match"):
        write_smv(tmp_path / "bad.img", values, pixels.T)


# ----------------------------------------------------------------------------- HKL and Fdump

C_FDUMP_SHA256 = {  # sha256 of the Fdump.bin the reference binary wrote for (file, -default_F)
    ("pattern", 0.0): "ff8706f85c4fbeb4ea7e7676b34228a146a90a95b6f1e5b3329e6ceecc45c027",
    ("sparse", 10.0): "e92c1936b8cedd25acd36af7a74071c66e09c6da66fecb8463882410e8658bf6",
    ("dup", 3.5): "bf19c9810f9a30934e3e2927bb85f7627789e422de89fcb96ccb13c3def6249a",
}
HKL_FILES = {
    "pattern": GOLDEN / "hkl-pattern" / "pattern.hkl",
    "sparse": GOLDEN / "hkl-default-F-fill" / "sparse.hkl",
}


def _hkl_path(name: str, tmp_path: Path) -> Path:
    if name in HKL_FILES:
        return HKL_FILES[name]
    path = tmp_path / f"{name}.hkl"
    path.write_text("0 0 0 1\n0 0 0 2\n1 -2 3 4.5\n-1 1 0 7\n")
    return path


@pytest.mark.parametrize("name, default_F", sorted(C_FDUMP_SHA256))
def test_fdump_bytes_match_c(name, default_F, tmp_path):
    grid = read_hkl(_hkl_path(name, tmp_path), default_F)
    assert hashlib.sha256(fdump_bytes(grid)).hexdigest() == C_FDUMP_SHA256[(name, default_F)]
    assert grid.warnings == ()


def test_hkl_grid_layout_and_counts():
    grid = read_hkl(HKL_FILES["pattern"], 0.0)
    assert (grid.h_min, grid.h_max, grid.k_min, grid.k_max, grid.l_min, grid.l_max) == (-1, 2, -1, 2, 0, 0)
    assert grid.F.shape == (5, 5, 2) and grid.ranges == (4, 4, 1)
    assert grid.F[2 + 1, 0 + 1, 0] == 200.0 and grid.F[-1 + 1, 0 + 1, 0] == 40.0
    assert not grid.F[-1].any() and not grid.F[:, -1].any() and not grid.F[:, :, -1].any()
    assert re.search(rf"^  {grid.hkls} initialized hkls", _stdout("hkl-pattern"), re.M)

    sparse = read_hkl(HKL_FILES["sparse"], 10.0)
    assert sparse.hkls == 3 and sparse.F[1, 0, 0] == 10.0 and sparse.F[2, 0, 0] == 80.0
    assert not sparse.F[-1].any()

    dense = read_hkl(GOLDEN / "hkl-interpolate" / "grid.hkl", 0.0)
    assert dense.hkls == 2197 and dense.F.shape == (14, 14, 14)
    assert re.search(r"^  2197 initialized hkls", _stdout("hkl-interpolate"), re.M)
    assert (dense.F[:13, :13, :13] >= 50).all()


def test_fdump_round_trip(tmp_path):
    grid = read_hkl(GOLDEN / "hkl-interpolate" / "grid.hkl", 0.0)
    write_fdump(tmp_path / "Fdump.bin", grid)
    back = read_fdump(tmp_path / "Fdump.bin")
    assert (back.h_min, back.h_max, back.k_min, back.k_max, back.l_min, back.l_max) == (-6, 6, -6, 6, -6, 6)
    assert np.array_equal(back.F, grid.F) and back.hkls == 13**3
    assert (tmp_path / "Fdump.bin").read_bytes().startswith(b"-6 6 -6 6 -6 6\n\f")


def test_fdump_first_double_starting_with_whitespace_byte(tmp_path):
    # C's fscanf("...\n\f") would swallow this value's leading 0x20 byte and misread the grid
    value = float(np.frombuffer(bytes([0x20]) + np.float64(100.0).tobytes()[1:], dtype="<f8")[0])
    (tmp_path / "w.hkl").write_text(f"0 0 0 {value!r}\n1 0 0 50\n")
    write_fdump(tmp_path / "w.bin", read_hkl(tmp_path / "w.hkl"))
    assert read_fdump(tmp_path / "w.bin").F[0, 0, 0] == value


def test_fdump_errors(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"hello")
    with pytest.raises(NBError, match="not an Fdump"):
        read_fdump(tmp_path / "a.bin")
    (tmp_path / "b.bin").write_bytes(b"0 1 0 1 0 1\n\f" + bytes(8 * 26))
    with pytest.raises(NBError, match="needs 216"):
        read_fdump(tmp_path / "b.bin")


@pytest.mark.parametrize(
    "text, match",
    [
        ("# h k l F\n0 0 0 1\n", r"line 1: '#' is not a number"),
        ("0 0 0 1\n1 0 0 x\n", r"line 2: 'x' is not a number"),
        ("0 0 0 1\n1 0 0\n", r"line 2: expected h k l F, found 3"),
        ("0 0 0 nan\n", r"line 1: 'nan' is not a finite"),
        ("\n\n", r"not enough HKL indices"),
        ("0 0 0 1\n0 5e9 0 1\n", r"line 2: k = 5e\+09 does not fit a C int"),
        ("0 0 0 1\n0 100000 0 1\n-100000 0 0 1\n", r"too large"),
    ],
)
def test_hkl_bad_inputs(text, match, tmp_path):
    (tmp_path / "bad.hkl").write_text(text)
    with pytest.raises(NBError, match=match):
        read_hkl(tmp_path / "bad.hkl")


def test_hkl_missing_file(tmp_path):
    with pytest.raises(NBError, match="unable to open") as err:
        read_hkl(tmp_path / "none.hkl")
    assert err.value.exit_code == 9


def test_hkl_five_columns_and_non_integer_warnings(tmp_path):
    (tmp_path / "wide.hkl").write_text("0 0 0 100 5.0\n1 0 0 50 3.0\n")
    wide = read_hkl(tmp_path / "wide.hkl")
    assert wide.F[0, 0, 0] == 100 and wide.F[1, 0, 0] == 50 and wide.hkls == 2
    assert len(wide.warnings) == 1 and "more than 4 columns (first: line 1)" in wide.warnings[0]

    (tmp_path / "frac.hkl").write_text("0 0 0 100\n1.5 0 0 50\n-1 2.0 0 25\n")
    frac = read_hkl(tmp_path / "frac.hkl")
    assert frac.warnings[0] == "WARNING: non-integer value for h (1.5) at line 1"
    assert "line 2: index not written as a plain integer" in frac.warnings[1]
    assert len(frac.warnings) == 2
    assert (frac.h_min, frac.h_max) == (-1, 1) and frac.F[2, 0, 0] == 50  # index int(1.5) = 1


def _expected_grid(entries, default_F=0.0):
    """The C grid built entry by entry in plain Python (later duplicates win)."""
    h, k, l = (np.array([e[i] for e in entries]) for i in range(3))
    lo = (h.min(), k.min(), l.min())
    F = np.zeros((h.max() - lo[0] + 2, k.max() - lo[1] + 2, l.max() - lo[2] + 2))
    F[:-1, :-1, :-1] = default_F
    for hh, kk, ll, ff in entries:
        F[hh - lo[0], kk - lo[1], ll - lo[2]] = ff
    return F


@pytest.mark.parametrize("newline, sep", [("\n", " "), ("\r\n", "\t"), ("\n", "  \t ")])
def test_hkl_large_well_formed_file_matches_entry_by_entry_grid(newline, sep, tmp_path):
    # the vectorised reader (well-formed files) against a plain per-entry construction:
    # signs, padding, blank lines, repeated indices and every float spelling C's fscanf reads
    rng = np.random.default_rng(7)
    n = 5000
    hkl = rng.integers(-9, 10, size=(n, 3))
    F = rng.uniform(0.0, 2000.0, n) * 10.0 ** rng.integers(-3, 4, n)
    spell = [repr, lambda x: f"{x:.3e}", lambda x: f"{x:+.2f}", lambda x: f"{x:G}"]
    lines = []
    for i, ((h, k, l), f) in enumerate(zip(hkl.tolist(), F.tolist(), strict=True)):
        lines.append(
            sep.join([f"{h:+d}" if i % 3 else f"{h}", f"{k:03d}" if k >= 0 else str(k), str(l), spell[i % 4](f)])
        )
        if i % 1000 == 0:
            lines.append("")
    (tmp_path / "big.hkl").write_bytes((newline.join(lines) + newline).encode())
    values = [float(spell[i % 4](f)) for i, f in enumerate(F.tolist())]
    entries = [(int(h), int(k), int(l), v) for (h, k, l), v in zip(hkl, values, strict=True)]
    grid = read_hkl(tmp_path / "big.hkl", 3.5)
    assert grid.warnings == () and grid.hkls == n
    assert (grid.h_min, grid.h_max) == (hkl[:, 0].min(), hkl[:, 0].max())
    assert np.array_equal(grid.F, _expected_grid(entries, 3.5))


def test_hkl_validator_runs_only_for_anomalous_files(tmp_path, monkeypatch):
    # well-formed files take the vectorised path (the speed of large files depends on it);
    # anything unusual goes through the line validator, which owns every message and warning
    import nbjax.io.hkl as hkl

    calls = []
    validator = hkl._entries
    monkeypatch.setattr(hkl, "_entries", lambda path, data: calls.append(path) or validator(path, data))
    (tmp_path / "plain.hkl").write_text("0 0 0 1\r\n\n-1 2 +3 2.5e1\r\n")
    grid = read_hkl(tmp_path / "plain.hkl")
    assert calls == [] and grid.hkls == 2 and grid.F[0, 2, 3] == 25.0
    for name, text in (("frac", "0 0 0 1\n1.0 0 0 2\n"), ("wide", "0 0 0 1 5\n"), ("tab", "0\v0 0 1\n")):
        (tmp_path / f"{name}.hkl").write_text(text)
        read_hkl(tmp_path / f"{name}.hkl")
    assert calls == [tmp_path / f"{name}.hkl" for name in ("frac", "wide", "tab")]


@pytest.mark.parametrize(
    "bad_line, match",
    [
        ("1 2 3 x", r"line 2002: 'x' is not a number"),
        ("1 2 3", r"line 2002: expected h k l F, found 3"),
        ("1 2 3 1e999", r"line 2002: '1e999' is not a finite"),
        ("1 2 3000000000 4", r"line 2002: l = 3e\+09 does not fit a C int"),
    ],
)
def test_hkl_error_deep_in_a_large_file_names_its_line(bad_line, match, tmp_path):
    good = "".join(f"{i % 7} {i % 5} {i % 3} {i}.5\n" for i in range(2000))
    (tmp_path / "bad.hkl").write_text(good + "\n" + bad_line + "\n" + good)
    with pytest.raises(NBError, match=match):
        read_hkl(tmp_path / "bad.hkl")


def test_hkl_lone_carriage_return_is_not_a_line_break(tmp_path):
    # C's fscanf sees "0 0 0 1\r1 0 0 2" as one run of numbers; the validator reports 8 columns
    (tmp_path / "cr.hkl").write_bytes(b"0 0 0 1\r1 0 0 2\n")
    grid = read_hkl(tmp_path / "cr.hkl")
    assert grid.hkls == 1 and "more than 4 columns" in grid.warnings[0]


def test_hkl_binary_file_error_is_one_escaped_truncated_line(tmp_path):
    # a structure-factor cache passed as -hkl: its header reads as numbers, then binary bytes
    blob = b"0 1 0 1 0 1\n\f" + bytes(b for b in range(256) if b not in b" \t\n\r\v\f") * 4
    (tmp_path / "Fdump.bin").write_bytes(blob)
    with pytest.raises(NBError) as err:
        read_hkl(tmp_path / "Fdump.bin")
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'Fdump.bin'} line 2: '\\x00\\x01") and message.endswith(
        "...' is not a number"
    )
    quoted = message.split("'")[1]
    assert quoted.isascii() and quoted.isprintable() and len(quoted) <= 4 * 40 + 3
    assert len(message.splitlines()) == 1


# ----------------------------------------------------------------------------- source and matrix files

SOURCE_CASES = ["src-weights-seed", "src-weights-equal", "src-lambda-column", "src-xyz-only", "src-along-beam-mosflm"]


@pytest.mark.parametrize("case", SOURCE_CASES)
def test_source_file_matches_c_source_list(case):
    rows = read_source_file(GOLDEN / case / "sources.txt")
    args = json.loads((GOLDEN / case / "args.json").read_text())
    lambda0 = float(args[args.index("-lambda") + 1]) * 1e-10
    defaults = [-10.0 * 1.0, -10.0 * 0.0, -10.0 * 0.0, 1.0, lambda0]  # MOSFLM beam (1,0,0)
    filled = [[d if math.isnan(v) else v for v, d in zip(row, defaults, strict=True)] for row in rows]
    printed = [
        f"{cformat_g(x)} {cformat_g(y)} {cformat_g(z)}   {cformat_g(i)} {cformat_g(w)}" for x, y, z, i, w in filled
    ]
    out = _stdout(case).splitlines()
    start = next(n for n, line in enumerate(out) if re.match(r"  created a total of \d+ sources:", line))
    assert int(out[start].split()[4]) == len(rows)
    assert out[start + 1 : start + 1 + len(rows)] == printed


def test_source_file_columns_and_delimiters(tmp_path):
    (tmp_path / "s.txt").write_bytes(b"-1,0;0:2!1.1e-10 99\n  \t\n-1 0.1 0\n-1 0 0 1 1e-10\r\n-1 0 0 1 1e-10")
    rows = read_source_file(tmp_path / "s.txt")
    assert rows.shape == (4, 5)
    assert rows[0].tolist() == [-1.0, 0.0, 0.0, 2.0, 1.1e-10]
    assert rows[1, :3].tolist() == [-1.0, 0.1, 0.0] and np.isnan(rows[1, 3:]).all()


@pytest.mark.parametrize(
    "content, match",
    [
        (b"# X Y Z I lambda\n-1 0 0 1 1e-10\n", r"line 1: '#' is not a number"),
        (b"-1 0 0 1 1e-10\n-1 zero 0\n", r"line 2: 'zero' is not a number"),
        (b"-1 0 0\r\n", r"line 1: the C program reads this line as -1 0 0 0 0"),
        (b"-1 0 0 1 1e-10\n-1 0 0", r"line 2: the C program reads this line as -1 0 0 0 0"),
        (b"-1 0 0 1 1e-10\n\r\n", r"line 2: the C program reads this line as 0 0 0 0 0"),
        (b"-1 0 0 1 0\n", r"line 1: wavelength 0 m must be positive"),
        (b"-1 0 0 1 -1e-10\n", r"line 1: wavelength -1e-10 m must be positive"),
        (b"-1 0 inf\n", r"line 1: 'inf' is not a finite number"),
        (b"-1 nan 0\n", r"line 1: 'nan' is not a finite number"),
        (b"0 0 0 1 1e-10\n", r"line 1: source position 0 0 0 has no direction"),
        (b"\n , \n", r"no sources"),
    ],
)
def test_source_file_bad_inputs(content, match, tmp_path):
    (tmp_path / "s.txt").write_bytes(content)
    with pytest.raises(NBError, match=match):
        read_source_file(tmp_path / "s.txt")


def test_mat_file_matches_c_reciprocal_vectors(tmp_path):
    A = read_mat(GOLDEN / "mat-file" / "A.mat")
    assert A[0].tolist() == [0.0140079114, -0.0068327833, 0.0047103499]
    out = _stdout("mat-file").splitlines()
    start = out.index("reciprocal-space cell vectors (Angstrom^-1):") + 2
    scaled = A / 1.2  # -lambda 1.2; columns are a*, b*, c*
    for axis, row in zip("XYZ", scaled, strict=True):
        assert out[start + "XYZ".index(axis)] == f"{axis}: " + " ".join(f"{v:11.8f}" for v in row)

    (tmp_path / "mosflm.mat").write_text(
        " -0.01 0.002 0.003\n 0.004 -0.005 0.006\n 0.007 0.008 -0.009\n 0.0 0.0 0.0\n"
        " 1 0 0\n 0 1 0\n 0 0 1\n 79.1 79.1 38.2 90 90 90\n SYMM P43212\n"
    )
    assert read_mat(tmp_path / "mosflm.mat")[2, 2] == -0.009
    (tmp_path / "short.mat").write_text("1 2 3\n4 5 6\n7 8\n")
    with pytest.raises(NBError, match="found 8"):
        read_mat(tmp_path / "short.mat")
    (tmp_path / "nan.mat").write_text("1 2 3\n4 nan 6\n7 8 9\n")
    with pytest.raises(NBError, match="not a finite"):
        read_mat(tmp_path / "nan.mat")
    with pytest.raises(NBError, match="cannot read"):
        read_mat(tmp_path / "none.mat")
