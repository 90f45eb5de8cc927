"""Write a parity bundle: everything needed to judge (and re-run) one comparison.

Layout of ``reports/<topic>/<YYYYmmddTHHMMSSZ>/``::

    commands.txt     every command run, with its folder and the environment that matters
    notes.md         args, both programs with sha256, metrics vs thresholds, lint, anomalies
    metrics.json     machine-readable verdict, metrics, runner status, timings, lint
    fixture.sha256   sha256 of every input file ARGS reference (sha256sum -c format)
    c_stdout.txt  c_stderr.txt  c_float.bin  c.png
    py_stdout.txt py_stderr.txt py_float.bin py.png
    diff.png         nbjax - C, mid-grey = 0
    pytest.log       when --pytest selectors were given

A runner that failed keeps its outputs in ``<side>_segfault/`` (SIGSEGV), ``<side>_crash/``
(other signals), ``<side>_timeout/`` or ``<side>_failure/`` (non-zero exit or no image) instead,
with ``status.json`` recording the exit code and signal name.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from . import exitcodes, png, provenance, runners
from .compare import Comparison
from .exitcodes import InputIOError
from .inputs import fixture_sha256_lines
from .lint import has_errors
from .metrics import jsonable
from .report import fmt

MAX_EXTRA_BYTES = 64 << 20


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def check_topic(topic: str | None) -> None:
    if topic is not None and (not topic or "/" in topic or topic in (".", "..")):
        raise exitcodes.UsageError(f"bad --topic {topic!r}: use a plain folder name")


def new_bundle_dir(out_root: Path, topic: str | None, stamp: str | None = None) -> Path:
    """``out_root/<topic>/<stamp>/`` (``-2``, ``-3``... appended if it already exists)."""
    check_topic(topic)
    base = out_root / topic if topic else out_root
    stamp = stamp or utc_stamp()
    path, k = base / stamp, 2
    while path.exists():
        path = base / f"{stamp}-{k}"
        k += 1
    try:
        path.mkdir(parents=True)
    except OSError as exc:
        raise InputIOError(f"cannot create bundle folder {path}: {exc.strerror or exc}") from None
    return path


def _copy(src: Path, dst: Path) -> bool:
    if src.is_file():
        shutil.copyfile(src, dst)
        return True
    return False


def _write_side(bdir: Path, res: runners.RunResult, local_inputs: set[str]) -> dict:
    """Copy one runner's stdout/stderr/float image; failures go to their fault folder."""
    label = res.label
    fault = res.fault_dir_name
    dest = bdir / fault if fault else bdir
    dest.mkdir(exist_ok=True)
    files = {}
    for kind, src in (("stdout", res.stdout_path), ("stderr", res.stderr_path)):
        name = f"{label}_{kind}.txt"
        if not _copy(src, dest / name):
            (dest / name).write_text("")
        files[kind] = str((dest / name).relative_to(bdir))
    if res.float_path.is_file():
        _copy(res.float_path, dest / f"{label}_float.bin")
        files["float"] = str((dest / f"{label}_float.bin").relative_to(bdir))
    if fault:
        status = res.to_json()
        (dest / "status.json").write_text(json.dumps(status, indent=2) + "\n")
        extra = dest / "outputs"
        for p in sorted(res.cwd.iterdir()) if res.cwd.is_dir() else []:
            if (
                p.is_file()
                and p.name not in local_inputs
                and p != res.float_path
                and p.stat().st_size <= MAX_EXTRA_BYTES
            ):
                extra.mkdir(exist_ok=True)
                _copy(p, extra / p.name)
        files["fault_dir"] = fault
    return files


def _commands_txt(cmp: Comparison, bridge_argv: list[str], pytest_info: dict | None) -> str:
    env = provenance.relevant_env()
    lines = [
        f"# nbjax-bridge commands ({utc_stamp()})",
        f"# bridge: {shlex.join(bridge_argv)}",
        f"# bridge cwd: {Path.cwd()}",
        f"# bridge python: {sys.executable}",
        "",
        "## environment (unset = not set)",
    ]
    for k, v in env.items():
        lines.append(f"{k}={shlex.quote(v) if v is not None else '(unset)'}")
    lines += ["", "## programs"]
    for runner in (cmp.options.c, cmp.options.py):
        for item in provenance.describe_command(runner.cmd):
            lines.append(f"{runner.label}: {item['role']}: {item['path']}  sha256={item['sha256']}")
    lines += ["", "## inputs staged into each run folder (copied; ARGS rewritten to these names)"]
    for inp in cmp.prepared.inputs:
        lines.append(f"{inp.flag} {inp.given} -> {inp.local}")
    if not cmp.prepared.inputs:
        lines.append("(none)")
    for res in (cmp.c, cmp.py):
        lines += [
            "",
            f"## {res.label} (temporary folder, removed afterwards)",
            f"cd {shlex.quote(str(res.cwd))}",
            provenance.shell_line(res.cmd),
            f"# exit {res.returncode}  status {res.status}  ({res.describe()})  {res.elapsed_s:.3f} s",
        ]
    if pytest_info:
        lines += [
            "",
            "## pytest",
            f"cd {shlex.quote(pytest_info['cwd'])}",
            provenance.shell_line(pytest_info["cmd"]),
            f"# exit {pytest_info['returncode']}  {pytest_info['elapsed_s']:.1f} s"
            + ("  (timed out)" if pytest_info["timed_out"] else ""),
        ]
    return "\n".join(lines) + "\n"


def _notes_md(
    cmp: Comparison, bdir: Path, sides: dict, pytest_info: dict | None, previews: list[str], topic: str | None
) -> str:
    o = cmp.outcome
    L = [
        f"# Parity bundle: {topic or bdir.name}",
        "",
        f"- created: {bdir.name} (UTC)",
        f"- verdict: **{o.verdict}**",
        f"- exit code: {o.exit_code} ({exitcodes.MEANING.get(o.exit_code, '?')})",
        "",
        "## Arguments",
        "",
        "```",
        shlex.join(cmp.args),
        "```",
        "",
        f"Run as (in a temporary folder per program): `{shlex.join(cmp.prepared.argv)}`",
        "",
    ]
    if cmp.prepared.user_floatfile:
        L += [
            f"The `-floatfile {cmp.prepared.user_floatfile}` given in ARGS was replaced; the float "
            f"image is captured as `{cmp.prepared.float_name}`.",
            "",
        ]
    L += ["## Programs", "", "| side | command | file | sha256 | status | time (s) |", "|---|---|---|---|---|---|"]
    for runner, res in ((cmp.options.c, cmp.c), (cmp.options.py, cmp.py)):
        for k, item in enumerate(provenance.describe_command(runner.cmd)):
            first = k == 0
            L.append(
                f"| {runner.label if first else ''} | {('`' + runner.display + '`') if first else ''} "
                f"| {item['role']}: `{item['path']}` | `{item['sha256']}` "
                f"| {res.describe() if first else ''} | {f'{res.elapsed_s:.3f}' if first else ''} |"
            )
    L += ["", "## Inputs (fixture.sha256)", ""]
    L += [f"- `{inp.given}` ({inp.flag})" for inp in cmp.prepared.inputs] or ["- none"]
    L += ["", "## Lint", ""]
    if has_errors(cmp.findings):
        L += ["**C will fail on this input** (error findings below: C exits, crashes or writes a NaN image).", ""]
    L += [f"- {f.severity} `{f.code}`: {f.message}" for f in cmp.findings] or ["- no findings"]
    L += ["", "## Metrics vs thresholds", ""]
    if o.metrics:
        m = o.metrics
        L += ["| metric | value | requirement | pass |", "|---|---|---|---|"]
        for name, value, req, ok in o.checks:
            L.append(f"| {name} | {fmt(value, '.8g')} | {req} | {'pass' if ok else 'FAIL'} |")
        pk = m["peaks"]
        L += [
            "",
            "| other | value |",
            "|---|---|",
            f"| sum C | {fmt(m['sum_c'], '.10g')} |",
            f"| sum nbjax | {fmt(m['sum_py'], '.10g')} |",
            f"| sum ratio | {fmt(m['sum_ratio'], '.8f')} |",
            f"| rmse | {fmt(m['rmse'])} |",
            f"| max abs diff | {fmt(m['max_abs_diff'])} |",
            f"| max rel diff (vs max abs C) | {fmt(m['max_rel_diff'])} |",
            f"| non-finite C / nbjax | {m['nonfinite_c']} / {m['nonfinite_py']} |",
            f"| peaks matched (top {max(pk['n_c'], pk['n_py'])}, gate {pk['gate']} px) | "
            f"{pk['matched']}/{pk['n_c']}, median distance {fmt(pk['median_distance'], '.3f')} px |",
        ]
        if o.shape:
            L.append(f"| shape (fpixels x spixels) | {o.shape[0]}x{o.shape[1]} ({o.shape_source}) |")
        if m.get("roi"):
            L.append(f"| ROI x0 x1 y0 y1 (inclusive) | {' '.join(map(str, m['roi']))} |")
    else:
        L += [f"Not computed: {o.verdict}"]
    L += ["", "## Runners", ""]
    for res in (cmp.c, cmp.py):
        line = f"- {res.label}: {res.describe()}, exit code {res.returncode}"
        if res.signal_name:
            line += f", signal {res.signal_name}"
        if res.fault_dir_name:
            line += f"; its outputs are in `{res.fault_dir_name}/`"
        L.append(line)
    L += ["", "## Anomalies", ""]
    L += [f"- {a}" for a in o.anomalies] or ["- none"]
    if pytest_info:
        L += [
            "",
            "## Pytest",
            "",
            f"`{shlex.join(pytest_info['cmd'])}` exited "
            f"{pytest_info['returncode']}"
            + (" (timed out)" if pytest_info["timed_out"] else "")
            + "; log in `pytest.log`.",
        ]
    L += ["", "## Files", ""]
    L += [f"- `{p.relative_to(bdir)}`" for p in sorted(bdir.rglob("*")) if p.is_file()]
    L.append("- `notes.md`")
    return "\n".join(L) + "\n"


def run_pytest(selectors: list[str], bdir: Path, timeout: float | None) -> dict:
    cmd = [sys.executable, "-m", "pytest", *selectors]
    rc, timed_out, secs = runners.run_logged(cmd, Path.cwd(), bdir / "pytest.log", timeout)
    return {
        "cmd": cmd,
        "cwd": str(Path.cwd()),
        "returncode": rc,
        "timed_out": timed_out,
        "elapsed_s": round(secs, 3),
        "selectors": selectors,
    }


def write_bundle(
    cmp: Comparison,
    bdir: Path,
    topic: str | None,
    bridge_argv: list[str],
    pytest_selectors: list[str] | None = None,
    pytest_timeout: float | None = 1800.0,
) -> dict:
    """Write every bundle file into bdir; returns the metrics.json content."""
    try:
        local_inputs = {inp.local for inp in cmp.prepared.inputs}
        sides = {res.label: _write_side(bdir, res, local_inputs) for res in (cmp.c, cmp.py)}
        (bdir / "fixture.sha256").write_text("".join(l + "\n" for l in fixture_sha256_lines(cmp.prepared)))
        previews = []
        o = cmp.outcome
        if o.c_img is not None:
            png.write_image_preview(bdir / "c.png", o.c_img)
            previews.append("c.png")
        if o.py_img is not None:
            png.write_image_preview(bdir / "py.png", o.py_img)
            previews.append("py.png")
        if o.c_img is not None and o.py_img is not None and o.c_img.shape == o.py_img.shape:
            png.write_diff_preview(bdir / "diff.png", o.c_img, o.py_img)
            previews.append("diff.png")
        pytest_info = run_pytest(pytest_selectors, bdir, pytest_timeout) if pytest_selectors else None
        report = {
            "topic": topic,
            "created_utc": bdir.name,
            "args": cmp.args,
            "run_args": cmp.prepared.argv,
            "user_floatfile": cmp.prepared.user_floatfile,
            "inputs": [{"flag": i.flag, "given": i.given, "local": i.local} for i in cmp.prepared.inputs],
            "c": {**cmp.c.to_json(), "files": sides["c"], "programs": provenance.describe_command(cmp.options.c.cmd)},
            "py": {
                **cmp.py.to_json(),
                "files": sides["py"],
                "programs": provenance.describe_command(cmp.options.py.cmd),
            },
            **cmp.outcome.to_json(),
            "lint": [f.to_json() for f in cmp.findings],
            "lint_errors": has_errors(cmp.findings),
            "previews": previews,
            "pytest": pytest_info,
            "env": provenance.relevant_env(),
        }
        (bdir / "metrics.json").write_text(json.dumps(jsonable(report), indent=2) + "\n")
        (bdir / "commands.txt").write_text(_commands_txt(cmp, bridge_argv, pytest_info))
        (bdir / "notes.md").write_text(_notes_md(cmp, bdir, sides, pytest_info, previews, topic))
    except OSError as exc:
        raise InputIOError(f"cannot write bundle in {bdir}: {exc.strerror or exc}") from None
    return report
