"""Fit source parameters (spectrum, divergence, beam direction) and nuisance parameters to
observed diffraction images, with error bars from the Fisher information.

    import nbjax, nbjax.fit as nf
    exp = nbjax.experiment_from_args([...nanoBragg flags...], physical=True)
    obs = nf.observation("noiseimage.img", shape=(exp.detector.spixels, exp.detector.fpixels))
    result = nf.fit(exp, obs, [nf.Weights(), nf.Wavelengths(), nf.Scale()])
    print(result)

Public names are re-exported from private modules: parameters (``_parameters``: the
abstract kinds, the concrete parameters and ``PARAMETERS``, the registry by command-line name),
losses (``LOSSES``), optimisers (``_solvers``: ``METHODS``), data (``_data``), the fit and its
result (``_fit``), the demo problem (``_demo``: ``demo_problem``) and the files a fit writes
(``_report``: ``write_outputs``).  The command line (``nbjax fit``) and the benchmarks use these
names only.  The compiled passes are in ``_engine``: the Levenberg-Marquardt Jacobian by
forward mode with the lattice derivative shared by the tangents (``_tangents``), and the
one-pass gradient by a written-out adjoint for beam parameters (``_source_gradient``).
"""

from nbjax.fit._data import Observation, observation, read_image
from nbjax.fit._demo import problem as demo_problem
from nbjax.fit._fit import FitResult, Problem, build_problem, fit
from nbjax.fit._losses import LOSSES, AbstractLoss, Gaussian, Poisson, Readout
from nbjax.fit._parameters import (
    ALIASES,
    PARAMETERS,
    SCOPES,
    AbstractExperimentParameter,
    AbstractParameter,
    AbstractWeightsParameter,
    Background,
    BackgroundPlanes,
    BeamCentre,
    BeamDirection,
    Cell,
    CrystalSize,
    DetectorDistance,
    Dispersion,
    Distance,
    Divergence,
    Misset,
    MosaicSpread,
    PanelShift,
    ReflectionFactors,
    Scale,
    SourceAngles,
    Spectrum,
    SpectrumScale,
    SpectrumShift,
    Wavelengths,
    Weights,
    cell_system,
    parameter,
)
from nbjax.fit._report import write_outputs
from nbjax.fit._solvers import LBFGS, METHODS, AbstractMethod, AbstractOptaxMethod, Adam, LevenbergMarquardt
from nbjax.fit._still import Shoeboxes, StillResult, find_spots, refine_still, shoeboxes

__all__ = [
    "ALIASES",
    "LBFGS",
    "LOSSES",
    "METHODS",
    "PARAMETERS",
    "SCOPES",
    "AbstractExperimentParameter",
    "AbstractLoss",
    "AbstractMethod",
    "AbstractOptaxMethod",
    "AbstractParameter",
    "AbstractWeightsParameter",
    "Adam",
    "Background",
    "BackgroundPlanes",
    "BeamCentre",
    "BeamDirection",
    "Cell",
    "CrystalSize",
    "DetectorDistance",
    "Dispersion",
    "Distance",
    "Divergence",
    "FitResult",
    "Gaussian",
    "LevenbergMarquardt",
    "Misset",
    "MosaicSpread",
    "Observation",
    "PanelShift",
    "Poisson",
    "Problem",
    "Readout",
    "ReflectionFactors",
    "Scale",
    "Shoeboxes",
    "SourceAngles",
    "StillResult",
    "Spectrum",
    "SpectrumScale",
    "SpectrumShift",
    "Wavelengths",
    "Weights",
    "build_problem",
    "cell_system",
    "demo_problem",
    "find_spots",
    "fit",
    "observation",
    "parameter",
    "read_image",
    "refine_still",
    "shoeboxes",
    "write_outputs",
]
