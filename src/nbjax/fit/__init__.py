"""Fit source parameters (spectrum, divergence, beam direction) and nuisance parameters to
observed diffraction images, with error bars from the Fisher information.

    import nbjax, nbjax.fit as nf
    exp = nbjax.experiment_from_args([...nanoBragg flags...], physical=True)
    obs = nf.observation("noiseimage.img", shape=(exp.detector.spixels, exp.detector.fpixels))
    result = nf.fit(exp, obs, [nf.Weights(), nf.Wavelengths(), nf.Scale()])
    print(result)

Public names are re-exported from private modules: parameters (``_parameters``), losses,
optimisers (``_solvers``), data (``_data``), the fit and its result (``_fit``), the demo
(``_demo``).  The compiled passes are in ``_engine``: the Levenberg-Marquardt Jacobian by
forward mode with the lattice derivative shared by the tangents (``_tangents``), and the
one-pass gradient by a written-out adjoint for beam parameters (``_source_gradient``).
"""

from nbjax.fit._data import Observation, observation, read_image
from nbjax.fit._fit import FitResult, Problem, build_problem, fit
from nbjax.fit._losses import AbstractLoss, Gaussian, Poisson
from nbjax.fit._parameters import (
    PARAMETERS,
    AbstractParameter,
    Background,
    BeamCentre,
    BeamDirection,
    Cell,
    CrystalSize,
    Dispersion,
    Distance,
    Divergence,
    Misset,
    MosaicSpread,
    Scale,
    SourceAngles,
    Spectrum,
    Wavelengths,
    Weights,
)
from nbjax.fit._solvers import LBFGS, AbstractMethod, Adam, LevenbergMarquardt

__all__ = [
    "PARAMETERS",
    "AbstractLoss",
    "AbstractMethod",
    "AbstractParameter",
    "Adam",
    "Background",
    "BeamCentre",
    "BeamDirection",
    "Cell",
    "CrystalSize",
    "Dispersion",
    "Distance",
    "Divergence",
    "FitResult",
    "Gaussian",
    "LBFGS",
    "LevenbergMarquardt",
    "Misset",
    "MosaicSpread",
    "Observation",
    "Poisson",
    "Scale",
    "SourceAngles",
    "Spectrum",
    "Wavelengths",
    "Weights",
    "Problem",
    "build_problem",
    "fit",
    "observation",
    "read_image",
]
