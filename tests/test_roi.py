"""nbjax.roi.Roi: C's inclusive -roi rectangle clipped to the detector, against a brute-force
definition, and the kernel's pixel window (a deliberate copy until it uses Roi) agreeing with it."""

import itertools

import numpy as np

from nbjax.roi import Roi

SHAPE = (5, 7)  # (spixels, fpixels)
EDGES = (-3, -1, 0, 2, 4, 6, 9)
ROIS = [None] + [r for r in itertools.product(EDGES, repeat=4)][::7]


def _brute_mask(roi, shape):
    slow, fast = np.indices(shape)
    if roi is None:
        return np.ones(shape, dtype=bool)
    xmin, xmax, ymin, ymax = roi
    return (fast >= xmin) & (fast <= xmax) & (slow >= ymin) & (slow <= ymax)


def test_mask_slices_and_pixels_match_the_definition():
    for roi in ROIS:
        window = Roi.clip(roi, SHAPE)
        expected = _brute_mask(roi, SHAPE)
        assert np.array_equal(window.mask(), expected), roi
        assert window.n == int(expected.sum()) and window.empty == (not expected.any())
        image = np.arange(SHAPE[0] * SHAPE[1]).reshape(SHAPE)
        assert np.array_equal(np.sort(image[window.slices].ravel()), np.sort(image[expected]))
        k = np.arange(window.n)
        f, s = window.pixel(k)
        assert np.array_equal(image[s, f], image[window.slices].ravel())  # C order: slow-major


def test_bounds_are_cs_loop_limits():
    assert Roi.clip((2, 4, 1, 3), SHAPE).bounds == (2, 4, 1, 3)
    assert Roi.clip((-5, 40, -1, 40), SHAPE).bounds == (0, 6, 0, 4)
    assert Roi.clip(None, SHAPE).bounds == (0, 6, 0, 4)
