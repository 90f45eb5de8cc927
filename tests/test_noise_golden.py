"""Noise images bit-identical to the reference C program's, fed its own float images."""

import re
from pathlib import Path

import numpy as np
import pytest

from nbjax.io.noise import fast_poisson_noise_image, poisson_noise_image
from nbjax.rng import CRandom, mosaic_umats, random_misset

GOLDEN = Path(__file__).parent / "data" / "c_golden"
EXTRA = Path(__file__).parent / "data" / "c_extra"


def _smv_pixels(path: Path, shape) -> np.ndarray:
    return np.frombuffer(path.read_bytes()[512:], dtype="<u2").reshape(shape)


def _c_noise_line(case: str, root: Path = GOLDEN) -> tuple[str, int]:
    text = (root / case / "c_stdout.txt").read_text()
    match = re.search(r"^(\S+) photons on noise image \((\d+) overloads\)$", text, re.M)
    return match.group(1), int(match.group(2))


@pytest.mark.parametrize("case, seed, adc", [("io-int-pgm-noise", 123, 40.0), ("io-scale-adc", 99, 10.0)])
def test_noise_image_bit_identical(case, seed, adc):
    image = np.fromfile(GOLDEN / case / "c_float.bin", dtype="<f4").reshape(64, 64)
    noise, photons, overloads = poisson_noise_image(image, seed, adc)
    assert noise.dtype == np.uint16
    assert np.array_equal(noise, _smv_pixels(GOLDEN / case / "c_noise.img", (64, 64)))
    assert (f"{photons:.0f}", overloads) == _c_noise_line(case)


# A 12x12 float image from the reference binary (-detpixels 12 -pixel 0.4 -fluence 2e33, cubic
# 100 A, -N 5, -default_F 100) with 49 pixels above 1e6 photons (Gaussian branch) and 95 in the
# rejection branch, and what the binary wrote for it with -seed 4242 (adc 40).
BRIGHT_HEX = (
    "0f408e46f4f6414881ac42480929b446891ecc48794bbd463fe76048c8e86048594fbd467f25cc48a331b44674b84248"
    "f4f64148a2e1fe497657ff49047766485228814a17d76d4824a60c4a1aa70c4af5db6d48ba2c814a058266482267ff49"
    "81ac42487657ff49a107004a4ed66648ed54814aee1e6e48e0cd0c4ad6ce0c4ace236e485759814a54e166487d0f004a"
    "0929b446047766484ed666481c85cc46ad73e3480955d046b7967548659875484d59d046707be348e18ecc467be46648"
    "891ecc485228814aed54814aad73e348fb22fc4a9d70e64841a3874a2ea4874a5575e648962bfc4a8b7ee348de5c814a"
    "794bbd4617d76d48ee1e6e480955d0469d70e6485b4dd246da5677488a587748a951d2467a78e648fd5ed0468e2d6e48"
    "3fe7604824a60c4ae0cd0c4ab796754841a3874ada567748255d114a245e114aeb5b7748e2a7874a73a2754887d60c4a"
    "c8e860481aa70c4ad6ce0c4a659875482ea4874a8a587748245e114a225f114a9b5d7748cfa8874a21a475487dd70c4a"
    "594fbd46f5db6d48ce236e484d59d0465575e648a951d246eb5b77489b5d7748f855d246337de6484163d0466e326e48"
    "7f25cc48ba2c814a5759814a707be348962bfc4a7a78e648e2a7874acfa8874a337de6483134fc4a4f86e3484861814a"
    "a331b4460582664854e16648e18ecc468b7ee348fd5ed04673a2754821a475484163d0464f86e348a798cc4682ef6648"
    "74b842482267ff497d0f004a7be46648de5c814a8e2d6e4887d60c4a7dd70c4a6e326e484861814a82ef66485a17004a"
)
BRIGHT_UNSATURATED = {  # flat index -> count; every other pixel is 65535
    0: 18240,
    3: 23050,
    5: 24481,
    8: 24256,
    10: 23268,
    36: 23345,
    39: 26210,
    41: 26706,
    44: 26586,
    46: 26056,
    60: 23968,
    63: 26778,
    65: 27211,
    68: 26953,
    70: 27002,
    96: 24412,
    99: 26487,
    101: 26889,
    104: 26865,
    106: 26953,
    120: 23188,
    123: 26413,
    125: 26663,
    128: 26626,
    130: 26002,
}


def test_bright_image_gaussian_and_rejection_branches():
    image = np.frombuffer(bytes.fromhex(BRIGHT_HEX), dtype="<f4").reshape(12, 12)
    expected = np.full(144, 65535, dtype=np.uint16)
    expected[list(BRIGHT_UNSATURATED)] = list(BRIGHT_UNSATURATED.values())
    noise, photons, overloads = poisson_noise_image(image, 4242)
    assert np.array_equal(noise.ravel(), expected)
    assert (f"{photons:.0f}", overloads) == ("197229368", 119)


def test_roi_and_shared_state_order():
    image = np.fromfile(GOLDEN / "io-int-pgm-noise" / "c_float.bin", dtype="<f4").reshape(64, 64)
    noise, _, _ = poisson_noise_image(image, 5, 40.0, roi=(10, 20, 3, 7))
    assert noise[3:8, 10:21].min() >= 40 and noise.sum() == noise[3:8, 10:21].sum()
    # a typed negative -seed continues the table left by the mosaic stream, as in C
    rng = CRandom()
    mosaic_umats(0.0, 1, 12345678, rng)
    shared, _, _ = poisson_noise_image(image, -4, 40.0, rng=rng)
    fresh, _, _ = poisson_noise_image(image, -4, 40.0)
    assert not np.array_equal(shared, fresh)


# Typed negative -seed (C stores +N, so ran1 does not reload its table): the noise stream
# continues the table the earlier streams left.  (case, misset seed or None, mosaic spread deg,
# domains, mosaic seed, noise seed), all as typed on the C command line (tests/data/c_extra).
SHARED_STATE_CASES = [
    ("noise-negative-seed-mosaic", None, 0.5, 3, 12345678, -7),
    ("noise-negative-seed-misset-chain", 11, 1.0, 2, -5, -3),
]


@pytest.mark.parametrize("case, misset_seed, spread_deg, domains, mosaic_seed, seed", SHARED_STATE_CASES)
def test_negative_seed_continues_shared_state(case, misset_seed, spread_deg, domains, mosaic_seed, seed):
    image = np.fromfile(EXTRA / case / "c_float.bin", dtype="<f4").reshape(64, 64)
    rng = CRandom()
    if misset_seed is not None:
        random_misset(misset_seed, rng=rng)
    mosaic_umats(np.radians(spread_deg), domains, mosaic_seed, rng)
    noise, photons, overloads = poisson_noise_image(image, seed, 40.0, rng=rng)
    c_noise = _smv_pixels(EXTRA / case / "c_noise.img", (64, 64))
    assert np.array_equal(noise, c_noise)
    assert (f"{photons:.0f}", overloads) == _c_noise_line(case, EXTRA)
    fresh, _, _ = poisson_noise_image(image, seed, 40.0)  # what nbjax wrote before the fix
    assert not np.array_equal(fresh, c_noise)


def test_fast_noise_is_statistically_equivalent():
    image = np.full((128, 128), 7.5, dtype=np.float32)
    noise, photons, overloads = fast_poisson_noise_image(image, 1, adc=40.0, roi=(0, 127, 0, 63))
    inside = noise[:64].astype(np.float64) - 40.0
    assert inside.mean() == pytest.approx(7.5, abs=0.1)
    assert inside.var() == pytest.approx(7.5, rel=0.1)
    assert not noise[64:].any() and overloads == 0
    assert photons == pytest.approx(inside.sum())
