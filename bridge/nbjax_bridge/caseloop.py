"""Shared loop for ``matrix`` and ``replay``: run cases, print a table and summary, write JSON."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from . import exitcodes
from .cases import Case, Skip
from .compare import Options, Outcome
from .exitcodes import BridgeError, InputIOError
from .metrics import jsonable
from .report import fmt, table


def case_options(opts: Options, case: Case, cli_threshold: float | None, cli_sum_tol: float | None) -> Options:
    """Thresholds: an explicit command-line flag, else the case's own, else the default."""
    thr = cli_threshold if cli_threshold is not None else case.threshold
    tol = cli_sum_tol if cli_sum_tol is not None else case.sum_tol
    return replace(
        opts,
        threshold=opts.threshold if thr is None else float(thr),
        sum_tol=opts.sum_tol if tol is None else float(tol),
    )


def row_from_outcome(case: Case, outcome: Outcome, c_time, py_time, lint_errors: int) -> dict:
    m = outcome.metrics or {}
    pk = m.get("peaks") or {}
    return {
        "id": case.id,
        "status": "PASS" if outcome.passed else "FAIL",
        "exit_code": outcome.exit_code,
        "result": exitcodes.MEANING[outcome.exit_code],
        "verdict": outcome.verdict,
        "corr": m.get("corr"),
        "sum_ratio": m.get("sum_ratio"),
        "max_abs_diff": m.get("max_abs_diff"),
        "max_rel_diff": m.get("max_rel_diff"),
        "peaks": f"{pk['matched']}/{pk['n_c']}" if pk else None,
        "c_time_s": c_time,
        "py_time_s": py_time,
        "lint_errors": lint_errors,
        "threshold": outcome.threshold,
        "sum_tol": outcome.sum_tol,
        "details": outcome.to_json(),
    }


def run_cases(
    cases: list[Case], one: Callable[[Case, Path], dict], label: str, json_out: Path | None, meta: dict, stream=None
) -> int:
    """Run each case in its own temporary folder; returns the exit code."""
    stream = stream or sys.stdout
    rows = []
    for case in cases:
        with tempfile.TemporaryDirectory(prefix=f"nbjax-bridge-{case.id}-") as tmp:
            try:
                row = one(case, Path(tmp))
            except Skip as exc:
                row = {"id": case.id, "status": "SKIP", "exit_code": None, "verdict": str(exc)}
            except BridgeError as exc:
                row = {
                    "id": case.id,
                    "status": "ERROR",
                    "exit_code": exc.code,
                    "result": exitcodes.MEANING.get(exc.code),
                    "verdict": str(exc),
                }
        rows.append(row)
        print(f"{row['status']:5s} {case.id}: {row['verdict']}", file=stream, flush=True)
    body = [
        [
            r["id"],
            r["status"],
            fmt(r.get("corr"), ".6f"),
            fmt(r.get("sum_ratio"), ".6f"),
            fmt(r.get("max_abs_diff"), ".3g"),
            r.get("peaks") or "-",
            fmt(r.get("c_time_s"), ".2f"),
            fmt(r.get("py_time_s"), ".2f"),
            str(r.get("lint_errors", "-")),
        ]
        for r in rows
    ]
    print("", file=stream)
    print(
        table(body, ["case", "status", "corr", "sum_ratio", "max|diff|", "peaks", "C s", "nbjax s", "lint err"]),
        file=stream,
    )
    counts = {s: sum(r["status"] == s for r in rows) for s in ("PASS", "FAIL", "ERROR", "SKIP")}
    codes = [r["exit_code"] for r in rows if r["status"] in ("FAIL", "ERROR")]
    code = exitcodes.worst(codes) if codes else exitcodes.PASS
    summary = (
        f"{label}: {len(rows)} cases: {counts['PASS']} pass, {counts['FAIL']} fail, "
        f"{counts['ERROR']} error, {counts['SKIP']} skipped -> exit {code}"
    )
    print(summary, file=stream)
    report = {
        "kind": label,
        "created_utc": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        **meta,
        "summary": {**counts, "total": len(rows), "exit_code": code},
        "cases": rows,
    }
    if json_out is not None:
        try:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(jsonable(report), indent=2) + "\n")
        except OSError as exc:
            raise InputIOError(f"cannot write {json_out}: {exc.strerror or exc}") from None
        print(f"report: {json_out}", file=stream)
    return code
