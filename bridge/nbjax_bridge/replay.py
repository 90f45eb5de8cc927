"""``replay DIR``: compare nbjax against stored C outputs (no C binary needed).

DIR is laid out like tests/data/c_golden: ``DIR/cases.toml`` and, per case, ``DIR/<id>/c_float.bin``,
``DIR/<id>/c_stdout.txt`` and the case's fixture files, which are copied into the run folder.
"""

from __future__ import annotations

from pathlib import Path

from . import caseloop, cases, inputs, lint, runners
from .compare import Options, Side, evaluate, side_from_run
from .exitcodes import InputIOError, UsageError


def run_replay(
    root: Path,
    only: list[str] | None,
    opts: Options,
    json_out: Path | None,
    cli_threshold: float | None = None,
    cli_sum_tol: float | None = None,
) -> int:
    cases_path = root / "cases.toml"
    if not root.is_dir():
        raise UsageError(f"not a folder: {root}")
    if not cases_path.is_file():
        raise InputIOError(f"no cases.toml in {root}")
    case_list = cases.select(cases.load_cases(cases_path), only)

    def one(case: cases.Case, tmp: Path) -> dict:
        case_dir = root / case.id
        c_float = case_dir / "c_float.bin"
        if not c_float.is_file():
            raise InputIOError(f"no stored C image {c_float}")
        c_stdout_path = case_dir / "c_stdout.txt"
        c_stdout = c_stdout_path.read_text(errors="replace") if c_stdout_path.is_file() else ""
        fixtures = tmp / "fixtures"
        cases.stage_fixtures(case, fixtures, case_dir, prefer_stored=True)
        copts = caseloop.case_options(opts, case, cli_threshold, cli_sum_tol)
        prepared = inputs.prepare_args(case.args, fixtures)
        findings = lint.lint(prepared.effective, fixtures)
        run_dir = tmp / "py"
        inputs.stage(prepared, run_dir)
        res = runners.run(opts.py, prepared.argv, run_dir, prepared.float_name, opts.timeout)
        outcome = evaluate(
            Side("C (stored)", c_float, c_stdout),
            side_from_run("nbjax", res),
            copts.roi,
            copts.threshold,
            copts.sum_tol,
        )
        return caseloop.row_from_outcome(
            case, outcome, None, res.elapsed_s, sum(f.severity == "error" for f in findings)
        )

    meta = {
        "golden_dir": str(root),
        "py_cmd": opts.py.cmd,
        "defaults": {"corr": opts.threshold, "sum_tol": opts.sum_tol},
    }
    return caseloop.run_cases(case_list, one, "replay", json_out, meta)
