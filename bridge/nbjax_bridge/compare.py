"""One parity comparison: run both programs on identical ARGS (or use a stored C image) and judge.

``evaluate`` turns two image sources into an Outcome (exit code, verdict line, metrics);
``run_compare`` does the whole compare: prepare ARGS, lint, run C, run nbjax, evaluate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import exitcodes, images, inputs, lint, runners
from . import metrics as mx
from .exitcodes import UsageError


@dataclass
class Options:
    c: runners.Runner | None
    py: runners.Runner
    roi: tuple[int, int, int, int] | None = None
    threshold: float = mx.DEFAULT_THRESHOLD
    sum_tol: float = mx.DEFAULT_SUM_TOL
    timeout: float | None = 600.0


@dataclass
class Side:
    """Where one image comes from: a run, or a stored file (replay)."""

    label: str  # "C" or "nbjax"
    float_path: Path | None
    stdout: str
    failure: str | None = None  # why there is no usable image (None = fine)


def side_from_run(label: str, res: runners.RunResult) -> Side:
    return Side(
        label, res.float_path if res.has_image else None, res.stdout(), None if not res.failed else res.describe()
    )


@dataclass
class Outcome:
    exit_code: int
    verdict: str
    metrics: dict | None = None
    checks: list | None = None
    shape: tuple[int, int] | None = None
    shape_source: str = ""
    mismatch: str | None = None
    c_img: np.ndarray | None = None
    py_img: np.ndarray | None = None
    anomalies: list[str] = field(default_factory=list)
    threshold: float = mx.DEFAULT_THRESHOLD
    sum_tol: float = mx.DEFAULT_SUM_TOL

    @property
    def passed(self) -> bool:
        return self.exit_code == exitcodes.PASS

    def to_json(self) -> dict:
        return mx.jsonable(
            {
                "exit_code": self.exit_code,
                "result": exitcodes.MEANING.get(self.exit_code, "?"),
                "verdict": self.verdict,
                "shape": {"fpixels": self.shape[0], "spixels": self.shape[1], "source": self.shape_source}
                if self.shape
                else None,
                "shape_mismatch": self.mismatch,
                "thresholds": {"corr": self.threshold, "sum_tol": self.sum_tol},
                "metrics": self.metrics,
                "checks": [{"name": n, "value": v, "requirement": r, "ok": ok} for n, v, r, ok in (self.checks or [])],
                "anomalies": self.anomalies,
            }
        )


def _num(x, fmt=".6f") -> str:
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if x is None:
        return "-"
    if not math.isfinite(x):
        return str(x)
    return format(x, fmt)


def _load(side: Side) -> np.ndarray | None:
    if side.float_path is None:
        return None
    return images.read_float(side.float_path)


def evaluate(
    c: Side, py: Side, roi=None, threshold: float = mx.DEFAULT_THRESHOLD, sum_tol: float = mx.DEFAULT_SUM_TOL
) -> Outcome:
    anomalies: list[str] = []
    c_flat, py_flat = _load(c), _load(py)
    failures = [f"{s.label} {s.failure}" for s in (c, py) if s.failure]
    if failures:
        out = Outcome(
            exitcodes.RUNNER_FAILURE,
            "FAIL  runner failure: " + "; ".join(failures),
            threshold=threshold,
            sum_tol=sum_tol,
        )
        if c_flat is not None:
            out.c_img = images.reshape_one(c_flat, c.stdout)
        if py_flat is not None:
            out.py_img = images.reshape_one(py_flat, py.stdout)
        out.anomalies = failures
        return out
    shaped = images.shape_pair(c_flat, py_flat, c.stdout, py.stdout)
    if shaped.mismatch:
        return Outcome(
            exitcodes.SHAPE_MISMATCH,
            f"FAIL  shape mismatch: {shaped.mismatch}",
            mismatch=shaped.mismatch,
            c_img=images.reshape_one(c_flat, c.stdout),
            py_img=images.reshape_one(py_flat, py.stdout),
            anomalies=[shaped.mismatch],
            threshold=threshold,
            sum_tol=sum_tol,
        )
    try:
        m = mx.compute(shaped.c, shaped.py, roi)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    ok, checks = mx.judge(m, threshold, sum_tol)
    if shaped.source != "stdout":
        anomalies.append(f"image shape {shaped.shape[0]}x{shaped.shape[1]} guessed: {shaped.source}")
    for label, key in (("C", "nonfinite_c"), ("nbjax", "nonfinite_py")):
        if m[key]:
            anomalies.append(f"{label} image has {m[key]} non-finite pixels")
    for label, img in (("C", shaped.c), ("nbjax", shaped.py)):
        if np.all(img == 0):
            anomalies.append(f"{label} image is all zero")
    pk = m["peaks"]
    if pk["n_c"] and pk["match_fraction"] < 1.0:
        anomalies.append(f"only {pk['matched']}/{pk['n_c']} C peaks have an nbjax peak within {pk['gate']} px")
    head = "PASS" if ok else "FAIL  below threshold:"
    verdict = (
        f"{head}  corr={_num(m['corr'])}  sum_ratio={_num(m['sum_ratio'])}  "
        f"(need corr>={threshold:g}, |ratio-1|<={sum_tol:g})"
    )
    if not ok:
        bad = [n for n, _v, _r, good in checks if not good]
        verdict += f"  failed: {', '.join(bad)}"
    return Outcome(
        exitcodes.PASS if ok else exitcodes.BELOW_THRESHOLD,
        verdict,
        m,
        checks,
        shaped.shape,
        shaped.source,
        None,
        shaped.c,
        shaped.py,
        anomalies,
        threshold,
        sum_tol,
    )


@dataclass
class Comparison:
    args: list[str]
    cwd: Path
    prepared: inputs.PreparedArgs
    findings: list[lint.Finding]
    c: runners.RunResult
    py: runners.RunResult
    outcome: Outcome
    options: Options

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code


def run_compare(args: list[str], cwd: Path, opts: Options, workdir: Path) -> Comparison:
    """Prepare, lint, run C then nbjax (each in workdir/<side>/), evaluate."""
    if opts.c is None:
        raise UsageError("no C binary: pass --c-bin PATH or set NB_C_BIN")
    prepared = inputs.prepare_args(args, cwd)
    findings = lint.lint(prepared.effective, cwd)
    results = {}
    for runner in (opts.c, opts.py):
        run_dir = workdir / runner.label
        inputs.stage(prepared, run_dir)
        results[runner.label] = runners.run(runner, prepared.argv, run_dir, prepared.float_name, opts.timeout)
    c_res, py_res = results["c"], results["py"]
    outcome = evaluate(
        side_from_run("C", c_res), side_from_run("nbjax", py_res), opts.roi, opts.threshold, opts.sum_tol
    )
    if lint.has_errors(findings):
        outcome.anomalies.insert(0, "lint: C will fail on this input (error findings)")
    for res, label in ((c_res, "C"), (py_res, "nbjax")):
        if res.stderr().strip() and not res.failed:
            outcome.anomalies.append(f"{label} wrote to stderr")
    if prepared.user_floatfile:
        outcome.anomalies.append(
            f"-floatfile {prepared.user_floatfile} from ARGS was replaced by "
            f"-floatfile {prepared.float_name} (not written)"
        )
    return Comparison(list(args), cwd, prepared, findings, c_res, py_res, outcome, opts)
