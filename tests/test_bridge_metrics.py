"""Unit tests of the parity bridge's metrics, image shape, PNG writer and case fixtures."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from nbjax_bridge import cases, images, inputs, metrics, png

GOLDEN = Path(__file__).parent / "data" / "c_golden"


def spots(shape=(40, 50), centers=((10, 10), (20, 30), (30, 12)), sigma=1.2, bg=1.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    img = np.full(shape, bg)
    for k, (r, c) in enumerate(centers):
        img += (100.0 + 10 * k) * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma**2))
    return img


# ----------------------------------------------------------------------------- metrics


def test_identical_images_agree_exactly():
    a = spots()
    m = metrics.compute(a, a.copy())
    assert m["corr"] == 1.0 and m["sum_ratio"] == 1.0
    assert m["rmse"] == 0.0 and m["max_abs_diff"] == 0.0 and m["max_rel_diff"] == 0.0
    assert m["nonfinite_c"] == m["nonfinite_py"] == 0
    assert m["peaks"]["n_c"] == 3 and m["peaks"]["match_fraction"] == 1.0
    assert m["peaks"]["median_distance"] == 0.0
    ok, _ = metrics.judge(m)
    assert ok


def test_pearson_matches_numpy_and_is_scale_invariant():
    rng = np.random.default_rng(0)
    a, b = rng.random(500), rng.random(500)
    assert metrics.pearson(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert metrics.pearson(a, 3 * a + 2) == pytest.approx(1.0)
    assert metrics.pearson(np.ones(4), np.ones(4)) == 1.0
    assert math.isnan(metrics.pearson(np.ones(4), np.arange(4.0)))


def test_scaled_image_fails_sum_ratio_only():
    a = spots()
    m = metrics.compute(a, 1.01 * a)
    assert m["corr"] == pytest.approx(1.0)
    assert m["sum_ratio"] == pytest.approx(1.01)
    assert m["max_rel_diff"] == pytest.approx(0.01)
    ok, checks = metrics.judge(m)
    assert not ok
    failed = [name for name, _v, _r, good in checks if not good]
    assert failed == ["abs(sum_ratio-1)"]
    assert metrics.judge(m, sum_tol=0.02)[0]


def test_rmse_and_max_abs():
    a = np.zeros((4, 4))
    b = a.copy()
    b[1, 2] = 2.0
    m = metrics.compute(a, b)
    assert m["max_abs_diff"] == 2.0
    assert m["rmse"] == pytest.approx(math.sqrt(4.0 / 16))
    assert m["sum_ratio"] == math.inf and m["max_rel_diff"] == math.inf


def test_nonfinite_pixels_counted_and_fail():
    a = spots()
    b = a.copy()
    b[3, 4] = np.nan
    b[5, 6] = np.inf
    m = metrics.compute(a, b)
    assert m["nonfinite_c"] == 0 and m["nonfinite_py"] == 2 and m["nonfinite_mismatch"] == 2
    assert m["n_compared"] == a.size - 2
    assert not metrics.judge(m)[0]
    both_nan = np.full((3, 3), np.nan)
    m = metrics.compute(both_nan, both_nan)
    assert m["n_compared"] == 0 and not metrics.judge(m)[0]


def test_roi_restricts_all_metrics():
    a = spots()
    b = a.copy()
    b[35:, 40:] += 50.0  # outside the ROI below
    full = metrics.compute(a, b)
    sub = metrics.compute(a, b, roi=(0, 35, 0, 25))  # x0 x1 y0 y1, inclusive
    assert full["max_abs_diff"] == 50.0
    assert sub["max_abs_diff"] == 0.0 and sub["n_pixels"] == 36 * 26
    assert sub["sum_c"] == pytest.approx(a[:26, :36].sum())
    with pytest.raises(ValueError):
        metrics.compute(a, b, roi=(100, 120, 0, 5))


def test_maximum_filter_and_local_maxima():
    img = np.zeros((7, 7))
    img[2, 3] = 5.0
    img[5, 5] = 9.0
    img[5, 6] = 1.0
    mf = metrics.maximum_filter3(img)
    assert mf[1, 2] == 5.0 and mf[4, 4] == 9.0 and mf[0, 6] == 0.0
    peaks = metrics.local_maxima(img, n=20)
    assert peaks == [(5, 5, 9.0), (2, 3, 5.0)]
    assert metrics.local_maxima(img, n=1) == [(5, 5, 9.0)]
    assert metrics.local_maxima(np.zeros((3, 3))) == []  # a flat floor has no peaks


def test_peak_registration_gate():
    a = spots()
    shifted1 = np.roll(a, 1, axis=1)
    m = metrics.compute(a, shifted1)
    assert m["peaks"]["match_fraction"] == 1.0 and m["peaks"]["median_distance"] == 1.0
    shifted3 = np.roll(a, 3, axis=0)
    m = metrics.compute(a, shifted3)
    assert m["peaks"]["matched"] == 0 and m["peaks"]["match_fraction"] == 0.0
    diag = np.roll(np.roll(a, 1, axis=0), 1, axis=1)  # sqrt(2) <= 1.5
    assert metrics.compute(a, diag)["peaks"]["match_fraction"] == 1.0


def test_jsonable_replaces_nonfinite():
    assert metrics.jsonable({"a": [math.nan, math.inf, -math.inf, 1.5]}) == {"a": ["NaN", "Infinity", "-Infinity", 1.5]}


# ----------------------------------------------------------------------------- image shape


def test_shape_from_c_stdout_and_fast_major_reshape():
    stdout = (GOLDEN / "pixel-0.2-nonsquare" / "c_stdout.txt").read_text()
    assert images.parse_shape(stdout) == (96, 64)
    flat = images.read_float(GOLDEN / "pixel-0.2-nonsquare" / "c_float.bin")
    shaped = images.shape_pair(flat, flat.copy(), stdout, "")
    assert shaped.mismatch is None and shaped.c.shape == (64, 96) and shaped.source == "stdout"


def test_shape_mismatch_detected():
    a, b = np.zeros(64, np.float32), np.zeros(72, np.float32)
    assert images.shape_pair(a, b, "", "").mismatch
    line = "  distance=0.1 detsize=0x0  pixel=0.0001 meters ({}x{} pixels)"
    c = np.zeros(64, np.float32)
    mism = images.shape_pair(c, c, line.format(16, 4), line.format(8, 8)).mismatch
    assert mism and "16x4" in mism and "8x8" in mism
    ok = images.shape_pair(c, c, "", "")
    assert ok.shape == (8, 8) and "square" in ok.source


# ----------------------------------------------------------------------------- PNG


def _decode_png(data: bytes):
    assert data[:8] == png.SIGNATURE
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    w, h, depth, ctype, _c, _f, _i = struct.unpack(">IIBBBBB", chunks[0][1])
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    assert depth == 8 and ctype == 0 and len(raw) == h * (w + 1)
    rows = np.frombuffer(raw, np.uint8).reshape(h, w + 1)
    assert np.all(rows[:, 0] == 0)
    return rows[:, 1:]


def test_png_roundtrip(tmp_path):
    pix = (np.arange(12 * 7) % 256).astype(np.uint8).reshape(7, 12)
    path = tmp_path / "x.png"
    png.write_png(path, pix)
    assert np.array_equal(_decode_png(path.read_bytes()), pix)


def test_png_previews(tmp_path):
    img = spots()
    img[0, 0] = np.nan
    png.write_image_preview(tmp_path / "c.png", img)
    dec = _decode_png((tmp_path / "c.png").read_bytes())
    assert dec.shape == img.shape and dec[0, 0] == 0 and dec.max() == 255
    png.write_diff_preview(tmp_path / "d.png", img, img)
    dec = _decode_png((tmp_path / "d.png").read_bytes())
    assert np.all(dec[1:, 1:] == 128)
    assert png.signed_stretch(np.array([[-1.0, 0.0, 1.0]])).tolist() == [[1, 128, 255]]


# ----------------------------------------------------------------------------- fixtures


def test_grid_hkl_generator_matches_stored_file_byte_for_byte():
    stored = (GOLDEN / "hkl-interpolate" / "grid.hkl").read_bytes()
    toml = cases.load_cases(GOLDEN / "cases.toml")
    spec = next(c for c in toml if c.id == "hkl-interpolate").grid_hkl
    assert spec == {"name": "grid.hkl", "range": 6, "seed": 7}
    assert cases.grid_hkl_text(spec["range"], spec["seed"]).encode() == stored


def test_stage_fixtures_writes_files_and_skips_smv(tmp_path):
    toml = {c.id: c for c in cases.load_cases(GOLDEN / "cases.toml")}
    names = cases.stage_fixtures(toml["src-weights-seed"], tmp_path / "a", None)
    assert names == ["sources.txt"]
    assert (tmp_path / "a" / "sources.txt").read_bytes() == (GOLDEN / "src-weights-seed" / "sources.txt").read_bytes()
    with pytest.raises(cases.Skip, match="skipped: smv_inputs not generated"):
        cases.stage_fixtures(toml["mask-header"], tmp_path / "b", None)
    assert cases.stage_fixtures(toml["mask-header"], tmp_path / "c", GOLDEN / "mask-header") == ["mask.img"]


def test_prepare_args_rewrites_inputs_and_floatfile(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "s.txt").write_text("-10 0 0\n")
    (tmp_path / "A.mat").write_text("1 0 0\n0 1 0\n0 0 1\n")
    args = [
        "-mat",
        "A.mat",
        "-sourcefile",
        "d/s.txt",
        "-floatimage",
        "x.bin",
        "-intfile",
        "out/i.img",
        "-default_F",
        "1",
    ]
    p = inputs.prepare_args(args, tmp_path)
    assert p.argv == [
        "-mat",
        "A.mat",
        "-sourcefile",
        "s.txt",
        "-intfile",
        "i.img",
        "-default_F",
        "1",
        "-floatfile",
        "float.bin",
    ]
    assert p.user_floatfile == "x.bin"
    assert [(i.flag, i.given, i.local) for i in p.inputs] == [
        ("-mat", "A.mat", "A.mat"),
        ("-sourcefile", "d/s.txt", "s.txt"),
    ]
    assert p.effective[-2:] == ["-floatfile", "float.bin"] and "d/s.txt" in p.effective
    # an Fdump.bin in the folder is what C reads without -hkl
    (tmp_path / "Fdump.bin").write_bytes(b"0 0 0 0 0 0\n\f")
    assert [i.local for i in inputs.prepare_args(["-default_F", "1"], tmp_path).inputs] == ["Fdump.bin"]
    assert inputs.prepare_args(["-hkl", "A.mat"], tmp_path).inputs[0].flag == "-hkl"
