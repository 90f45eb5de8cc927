"""Every golden C case: nbjax's float image and printed statistics against the C program's.

float64: max |diff| / max(C) <= 1e-5.  float32: correlation >= 0.9999 and |sum ratio - 1| <=
1e-3.  The C program's stdout (geometry summary and closing statistics) is reproduced line for
line, apart from the float file's name and the time-based seed.
"""

import difflib

import golden
import pytest

CASES = golden.load_cases()
IDS = [c["id"] for c in CASES]


@pytest.fixture(scope="module")
def double_runs(tmp_path_factory):
    return {}


def _run(case, tmp_path_factory, precision):
    folder = tmp_path_factory.mktemp(f"{case['id']}-{precision}")
    return golden.run_nbjax(case, folder, extra=["-precision", precision])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float64_matches_c(case, tmp_path_factory, double_runs):
    image, out, _ = _run(case, tmp_path_factory, "double")
    double_runs[case["id"]] = out
    c = golden.c_image(case)
    assert image.shape == c.shape
    m = golden.metrics(c, image)
    assert m["max_rel"] <= 1e-5, m


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_matches_c(case, tmp_path_factory):
    image, _, _ = _run(case, tmp_path_factory, "single")
    m = golden.metrics(golden.c_image(case), image)
    assert m["corr"] >= 0.9999 and abs(m["sum_ratio"] - 1) <= 1e-3, m


def _comparable(lines):
    skip = ("% done", "  seed:", "writing c_float.bin", "writing py_float.bin", "mmap(")
    return [
        line.replace("-0.00000000", " 0.00000000")
        for line in lines
        if not any(s in line for s in skip) and "photons on noise image" not in line
    ]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_stdout_matches_c(case, double_runs, tmp_path_factory):
    out = double_runs.get(case["id"]) or _run(case, tmp_path_factory, "double")[1]
    c_lines = (case["dir"] / "c_stdout.txt").read_text().splitlines()
    diff = list(
        difflib.unified_diff(_comparable(c_lines), _comparable(out.splitlines()), "C", "nbjax", lineterm="", n=0)
    )
    assert not diff, "\n".join(diff[:20])
