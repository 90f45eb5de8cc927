"""The built-in fitting demo: a 5-channel spectrum recovered from one noisy still.

Truth: a 100 A cubic crystal of 10x10x10 cells in a random-looking misset, default_F 100, on a
128x128 detector of 0.2 mm pixels at 60 mm, lit by five sources along the beam at 0.98, 0.99,
1.00, 1.01 and 1.02 A with weights 0.5, 1.0, 2.0, 1.2, 0.6, fluence scaled so the brightest pixel
holds about 3000 photons, plus a flat background of 2 photons per pixel; the observed image is a
Poisson draw of that (``numpy.random.default_rng(seed)``).

Start: weights 20 % off (x1.2, x0.8, x1.1, x0.9, x1.25), every wavelength 0.1 % long (a fifth of
the channel spacing), scale 20 % low, background 0.  Free: the weights (simplex), the five
wavelengths, scale and background: 11 parameters.
"""

from __future__ import annotations

import os
import tempfile

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from nbjax.fit._data import Observation
from nbjax.fit._parameters import Background, Scale, Wavelengths, Weights

WAVELENGTHS_A = (0.98, 0.99, 1.00, 1.01, 1.02)
WEIGHTS = (0.5, 1.0, 2.0, 1.2, 0.6)
BACKGROUND = 2.0
PEAK_PHOTONS = 3000.0
DEMO_ARGV = [
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
    "10",
    "-misset",
    "12",
    "-23",
    "37",
    "-detpixels",
    "128",
    "-pixel",
    "0.2",
    "-distance",
    "60",
    "-oversample",
    "1",
]
WEIGHT_START = (1.2, 0.8, 1.1, 0.9, 1.25)


def source_text(wavelengths_a=WAVELENGTHS_A, weights=WEIGHTS) -> str:
    from nbjax.io.sourcefile import format_source_file

    n = len(wavelengths_a)
    return format_source_file(np.tile([-10.0, 0.0, 0.0], (n, 1)), weights, np.asarray(wavelengths_a) * 1e-10)


def truth_experiment():
    """The demo's true Experiment (physical) and the scale that sets its peak photons."""
    import nbjax

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "demo_sources.txt")
        with open(path, "w") as handle:
            handle.write(source_text())
        exp = nbjax.experiment_from_args(DEMO_ARGV + ["-sourcefile", path], physical=True)
    peak = float(np.max(np.asarray(nbjax.render(exp))))
    return exp, PEAK_PHOTONS / peak


def problem(seed: int = 0, noise: bool = True):
    """(starting Experiment, Observation, free parameters, true user values by label)."""
    import nbjax

    truth, scale = truth_experiment()
    mean = scale * np.asarray(nbjax.render(truth)) + BACKGROUND
    data = np.random.default_rng(seed).poisson(mean).astype(np.float64) if noise else mean
    obs = Observation(image=data, mask=np.ones(data.shape, bool), name="demo")
    start = eqx.tree_at(
        lambda e: (e.beam.weights, e.beam.wavelengths),
        truth,
        (truth.beam.weights * jnp.asarray(WEIGHT_START), truth.beam.wavelengths * 1.001),
    )
    free = [Weights(), Wavelengths(), Scale(start=0.8 * scale), Background()]
    w = np.asarray(WEIGHTS) / np.sum(WEIGHTS)
    truth_values = {f"weight[{i}]": w[i] for i in range(len(w))}
    truth_values |= {f"wavelength[{i}]": WAVELENGTHS_A[i] for i in range(len(w))}
    truth_values |= {"scale": scale, "background": BACKGROUND}
    return start, obs, free, truth_values
