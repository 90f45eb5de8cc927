"""``matrix CASES.toml``: compare C and nbjax live on every case of a case list."""

from __future__ import annotations

from pathlib import Path

from . import caseloop, cases
from .compare import Options, run_compare


def run_matrix(
    cases_path: Path,
    only: list[str] | None,
    opts: Options,
    json_out: Path | None,
    cli_threshold: float | None = None,
    cli_sum_tol: float | None = None,
) -> int:
    case_list = cases.select(cases.load_cases(cases_path), only)
    root = cases_path.resolve().parent

    def one(case: cases.Case, tmp: Path) -> dict:
        fixtures = tmp / "fixtures"
        case_dir = root / case.id
        cases.stage_fixtures(case, fixtures, case_dir if case_dir.is_dir() else None)
        cmp = run_compare(case.args, fixtures, caseloop.case_options(opts, case, cli_threshold, cli_sum_tol), tmp)
        return caseloop.row_from_outcome(
            case, cmp.outcome, cmp.c.elapsed_s, cmp.py.elapsed_s, sum(f.severity == "error" for f in cmp.findings)
        )

    meta = {
        "cases_file": str(cases_path),
        "c_cmd": opts.c.cmd if opts.c else None,
        "py_cmd": opts.py.cmd,
        "defaults": {"corr": opts.threshold, "sum_tol": opts.sum_tol},
    }
    return caseloop.run_cases(case_list, one, "matrix", json_out, meta)
