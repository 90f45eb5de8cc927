"""Many shots, one model: structure factors refined jointly over many stills, with every shot's
own orientation, cell, size, scale and background (``refine_ensemble``).

Public names are re-exported from private modules: the unique reflections and their P1 grid
(``_reflections``), a shot's set-up (``_shots``), the joint refinement (``_refine``), the
entry point and its result (``_ensemble``), and synthetic data sets with a known truth
(``_synthetic``: ``make_shots``).
"""

from nbjax.ensemble._ensemble import EnsembleResult, Input, ShotResult, refine_ensemble, setup_refinement
from nbjax.ensemble._reflections import Reflections, unique_reflections
from nbjax.ensemble._synthetic import (
    Table,
    Truth,
    make_shots,
    truth_table,
    write_hkl,
    write_mtz,
    write_spectrum,
)

__all__ = [
    "EnsembleResult",
    "Input",
    "Reflections",
    "ShotResult",
    "Table",
    "Truth",
    "make_shots",
    "refine_ensemble",
    "setup_refinement",
    "truth_table",
    "unique_reflections",
    "write_hkl",
    "write_mtz",
    "write_spectrum",
]
