"""Live multi-panel parity: for random DIALS experiments (1-4 flat panels, each placed by a
random rotation and offset under a random two-level hierarchy, random square pixel sizes and
panel sizes; random crystal cell and orientation, wavelength, beam direction within 2 deg of
+z, polarization fraction), every panel of nbjax's physical-mode stack
(``nbjax.panels.render_panels``) equals the C program's image of that panel, run with the argv
``nbjax.panels.panel_argv`` gives: max |diff| <= 1e-6 of the panel's maximum (C writes float32;
the float64 render is compared as float32).

Needs the C nanoBragg: set NB_C_BIN to the executable, else the module is skipped.  Examples per
run: $NBJAX_PARITY_EXAMPLES, else 10 under the ``ci`` profile (``test_parity_live._max_examples``).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from test_parity_live import _max_examples, run_c

C_BIN = os.environ.get("NB_C_BIN", "")
if not C_BIN or not os.path.isfile(C_BIN) or not os.access(C_BIN, os.X_OK):
    pytest.skip("live panel parity needs the C nanoBragg: set NB_C_BIN to the executable", allow_module_level=True)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import expt_fixtures as fx  # noqa: E402

angles = st.floats(-40.0, 40.0, allow_nan=False)
axes = st.builds(
    lambda z, phi: (math.sqrt(1 - z * z) * math.cos(phi), math.sqrt(1 - z * z) * math.sin(phi), z),
    st.floats(-1.0, 1.0),
    st.floats(0.0, 2 * math.pi),
)  # unit vectors, uniform on the sphere


@st.composite
def frames(draw, spread_mm):
    """A (fast, slow, origin) node: a random rotation and an offset up to spread_mm."""
    r = fx._rot(draw(axes), draw(angles))
    origin = [draw(st.floats(-spread_mm, spread_mm)) for _ in range(2)] + [draw(st.floats(-1.0, 1.0))]
    return list(r @ [1.0, 0.0, 0.0]), list(r @ [0.0, 1.0, 0.0]), origin


@st.composite
def experiments(draw):
    n = draw(st.integers(1, 4))
    root_fast, root_slow, _ = draw(frames(0.0))
    distance = draw(st.floats(40.0, 150.0))
    hierarchy = {"name": "D0", "fast_axis": root_fast, "slow_axis": root_slow, "origin": [0.0, 0.0, -distance]}
    group_fast, group_slow, group_origin = draw(frames(10.0))
    group = {"name": "G", "fast_axis": group_fast, "slow_axis": group_slow, "origin": group_origin, "children": []}
    hierarchy["children"] = [group]
    panels = []
    for k in range(n):
        _, _, origin = draw(frames(20.0))
        small = fx._rot([1.0, 0.0, 0.0], draw(st.floats(-15.0, 15.0)))  # keep panels facing the sample
        size = (draw(st.integers(8, 24)), draw(st.integers(8, 24)))
        panels.append(
            fx._panel(
                f"P{k}", origin, small @ [1.0, 0.0, 0.0], small @ [0.0, 1.0, 0.0], size, draw(st.floats(0.05, 0.4))
            )
        )
        group["children"].append({"panel": k})
    cell = tuple(draw(st.floats(30.0, 120.0)) for _ in range(3))
    misset = tuple(draw(st.floats(-180.0, 180.0)) for _ in range(3))
    tilt = fx._rot(draw(axes), draw(st.floats(0.0, 2.0)))
    beam = fx._beam(draw(st.floats(0.7, 2.0)), tuple(tilt @ [0.0, 0.0, 1.0]), draw(st.floats(0.5, 1.0)))
    crystal = fx._crystal(cell, misset, domain=None, half_mos=None)
    return fx._list({"panels": panels, "hierarchy": hierarchy}, crystal, beam)


@settings(max_examples=_max_examples(), deadline=None)
@given(doc=experiments(), n_cells=st.integers(3, 12))
def test_every_panel_equals_its_c_run(doc, n_cells):
    from nbjax.io import expt as E
    from nbjax.panels import panel_argv, panel_experiments, render_panels

    experiment = E.ExperimentList("drawn", doc).experiment(0)
    user = ["-default_F", "100", "-N", str(n_cells), "-nonoise", "-nopgm"]
    argv, matrix, _ = panel_argv(experiment, user)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        images = render_panels(panel_experiments(experiment, user).experiments)
    event(f"panels: {len(argv)}")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "A.mat").write_text("".join(" ".join(repr(float(x)) for x in row) + "\n" for row in matrix))
        for k, args in enumerate(argv):
            c, what = run_c(args, Path(tmp))
            assert c is not None, what
            c = c.reshape(np.shape(images[k]))
            mine = np.asarray(images[k]).astype(np.float32)
            event("a panel with a spot" if c.max() > 100 * np.median(c) else "a panel without a spot")
            assert np.max(np.abs(mine - c)) <= 1e-6 * max(float(c.max()), 1e-30), (k, args)
