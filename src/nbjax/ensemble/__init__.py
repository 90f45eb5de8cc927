"""Many shots, one model: structure factors refined jointly over many stills, with every shot's
own orientation, cell, size, scale and background (``refine_ensemble``).

Public names are re-exported from private modules: the unique reflections and their P1 grid
(``_reflections``), a shot's set-up (``_shots``), the joint refinement (``_refine``), the
entry point and its result (``_ensemble``).
"""

from nbjax.ensemble._ensemble import EnsembleResult, Input, ShotResult, refine_ensemble
from nbjax.ensemble._reflections import Reflections, unique_reflections

__all__ = ["EnsembleResult", "Input", "Reflections", "ShotResult", "refine_ensemble", "unique_reflections"]
