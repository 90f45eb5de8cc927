"""Serial crystallography with nbjax: many stills of one crystal sharing one structure-factor
table.  ``make_shots`` writes synthetic data sets with a known truth (``_synthetic``)."""

from __future__ import annotations

from nbjax.ensemble._synthetic import (
    Table,
    Truth,
    make_shots,
    truth_table,
    write_hkl,
    write_mtz,
    write_spectrum,
)

__all__ = ["Table", "Truth", "make_shots", "truth_table", "write_hkl", "write_mtz", "write_spectrum"]
