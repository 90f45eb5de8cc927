"""Physical mode against the C program: each case of tests/data/c_physical is a physical-mode run
and the C runs it decomposes into (weighted sources, oversampling on a finer C grid, sensor
layers as single-layer C runs, phi steps; properties/decompose.py explains each), and nbjax's
physical image must equal the combination sum_i c_i blocksum(C_i) of the stored C images.

Tolerance.  The C program writes float32 images (it adds each pixel's double value into a
float array), so each stored C pixel carries a rounding error of at most 2^-24 of itself (round
to nearest).  The combination is computed in float64 from those values, so per pixel
|nbjax - combination| <= 2^-24 sum_i |c_i| blocksum(|C_i|), plus the difference between two
float64 computations of the same physics in different operation orders, allowed 1e-9 of the
image maximum.  Measured: max |diff| / max is 2e-8 to 9e-8 (the C images' float32 rounding)
and no pixel exceeds the rounding bound at all.  The sensor-layer cases subtract C runs, so
their bound is relative to the terms, not to the small difference.
float32 nbjax: max |diff| / max <= 1e-5 (measured: at most 1.1e-7).  C-compatible mode differs
from every combination by 1.3e-4 (first-sub-pixel factors) to 0.55 (weights, layers) of the
maximum, so the decompositions tell the two modes apart.
"""

import tomllib
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import nbjax

DATA = Path(__file__).parent / "data" / "c_physical"
C_ROUNDING = 2.0**-24 * (1 + 1e-6)  # float32 round-to-nearest, relative to the stored value
DOUBLE_REL = 1e-9
SINGLE_REL = 1e-5
C_MODE_MIN_REL = 1e-4  # how far C-compatible mode must be from every combination

with open(DATA / "cases.toml", "rb") as _fh:
    CASES = tomllib.load(_fh)["case"]


def _block_sum(image, k):
    n0, n1 = image.shape[0] // k, image.shape[1] // k
    return image.reshape(n0, k, n1, k).sum(axis=(1, 3))


def combination(case):
    """(sum_i c_i blocksum(C_i), sum_i |c_i| blocksum(|C_i|)) in float64."""
    total = bound = 0.0
    for comp in case["component"]:
        c = np.fromfile(DATA / case["id"] / comp["name"] / "c_float.bin", dtype="<f4").astype(np.float64)
        n = int(round(np.sqrt(c.size)))
        blocks = _block_sum(c.reshape(n, n), comp["block"])
        total = total + comp["coefficient"] * blocks
        bound = bound + abs(comp["coefficient"]) * _block_sum(np.abs(c.reshape(n, n)), comp["block"])
    return total, bound


def render_physical(case, folder, monkeypatch, dtype, physical=True):
    for name, text in case.get("files", {}).items():
        (folder / name).write_text(text)
    monkeypatch.chdir(folder)
    exp = nbjax.experiment_from_args(case["args"], physical=physical)
    return np.asarray(nbjax.render(exp, dtype=dtype), dtype=np.float64)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_physical_equals_c_decomposition_float64(case, tmp_path, monkeypatch):
    image = render_physical(case, tmp_path, monkeypatch, jnp.float64)
    expected, bound = combination(case)
    assert image.shape == expected.shape
    assert expected.max() > 0 and np.all(np.isfinite(image))
    excess = np.abs(image - expected) - C_ROUNDING * bound
    assert excess.max() <= DOUBLE_REL * np.abs(expected).max(), (
        excess.max() / np.abs(expected).max(),
        np.unravel_index(np.argmax(excess), excess.shape),
    )


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_physical_equals_c_decomposition_float32(case, tmp_path, monkeypatch):
    image = render_physical(case, tmp_path, monkeypatch, jnp.float32)
    expected, _ = combination(case)
    assert np.max(np.abs(image - expected)) <= SINGLE_REL * np.abs(expected).max()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_c_compatible_mode_is_not_the_decomposition(case, tmp_path, monkeypatch):
    """The decompositions discriminate: C's own rules (weights ignored, factors of the first
    sub-pixel, C's layer sum) give another image."""
    image = render_physical(case, tmp_path, monkeypatch, jnp.float64, physical=False)
    expected, _ = combination(case)
    assert np.max(np.abs(image - expected)) >= C_MODE_MIN_REL * np.abs(expected).max()


def test_cases_cover_the_decompositions():
    """Each kind of decomposition is present: weighted sources (3+ with unequal weights and
    wavelengths), oversample 2 and 3, sensor layers, phi steps, and sources with oversampling."""

    def flags(case):
        return case["args"]

    def value(case, flag):
        a = flags(case)
        return a[a.index(flag) + 1] if flag in a else None

    kinds = set()
    for case in CASES:
        k = int(value(case, "-oversample"))
        n_src = len(case.get("files", {}).get("sources.txt", "").splitlines())
        if n_src >= 3:
            kinds.add("sources")
        if k > 1:
            kinds.add(f"oversample{k}")
        if k > 1 and n_src >= 2:
            kinds.add("sources+oversample")
        if value(case, "-detector_thicksteps"):
            kinds.add("layers")
        if value(case, "-phisteps"):
            kinds.add("phi")
    assert kinds >= {"sources", "oversample2", "oversample3", "sources+oversample", "layers", "phi"}
