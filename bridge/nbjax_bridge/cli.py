"""Command line: ``nbjax-bridge <compare|bundle|matrix|replay|lint> ...``.

nanoBragg ARGS follow a literal ``--`` (``lint`` also accepts them bare), so their single-dash
flags never meet argparse.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path

from . import bundle, exitcodes, lint, runners
from .batchworker import shared_process
from .compare import Options, run_compare
from .exitcodes import BridgeError, UsageError
from .metrics import DEFAULT_SUM_TOL, DEFAULT_THRESHOLD
from .report import metrics_table

PROG = "nbjax-bridge"
DEFAULT_TIMEOUT = 600.0

DESCRIPTION = """\
Parity bridge between the reference nanoBragg C binary and nbjax. Both programs get identical
nanoBragg ARGS, each in its own temporary folder holding copies of the input files the ARGS
reference; the float images (always captured with -floatfile) are compared with Pearson
correlation, sum ratio, RMSE, max abs/rel difference, non-finite counts and peak registration.
"""

EPILOG = (
    exitcodes.EPILOG
    + f"""

environment:
  {runners.ENV_C_BIN}  path of the C binary when --c-bin is not given

examples:
  {PROG} compare --c-bin ./nanoBragg -- -cell 100 100 100 90 90 90 -default_F 100 -N 5 -detpixels 64
  {PROG} bundle --topic src-weights --pytest tests/test_sources.py -- -sourcefile sources.txt ...
  {PROG} matrix tests/data/c_golden/cases.toml --only cubic-64 dmin
  {PROG} replay tests/data/c_golden --only src-weights-seed
  {PROG} lint -cell 100 100 100 90 90 90 -default_F 1 -sourcefile sources.txt
"""
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors: one line + exit 2, no traceback
        self.print_usage(sys.stderr)
        self.exit(exitcodes.USAGE, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return v


def _nonneg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return v


def _runner_opts(p: argparse.ArgumentParser, c_side: bool = True) -> None:
    if c_side:
        p.add_argument("--c-bin", metavar="PATH", help=f"reference C binary (default: ${runners.ENV_C_BIN})")
    p.add_argument(
        "--py-cmd",
        metavar="CMD",
        help='nbjax command, split like a shell (default: "python -m nbjax" with this '
        "Python); any program taking nanoBragg argv works",
    )
    p.add_argument(
        "--threshold",
        type=float,
        metavar="CORR",
        help=f"minimum Pearson correlation (default {DEFAULT_THRESHOLD:g}; "
        f"matrix/replay: the case's own value when given)",
    )
    p.add_argument(
        "--sum-tol", type=_nonneg, metavar="TOL", help=f"maximum |sum ratio - 1| (default {DEFAULT_SUM_TOL:g})"
    )
    p.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds per program run before its process group is killed (default {DEFAULT_TIMEOUT:g})",
    )


def _case_opts(p: argparse.ArgumentParser, kind: str, c_side: bool = True) -> None:
    """Options of the commands that run a list of cases (matrix, replay)."""
    p.add_argument("--only", nargs="+", action="extend", metavar="ID", help="run only these ids")
    p.add_argument("--json", metavar="OUT", help=f"JSON report path (default reports/{kind}/<stamp>.json)")
    p.add_argument(
        "--separate-processes",
        action="store_true",
        help="start nbjax once per case (default: when the nbjax side is nbjax itself, "
        "one `nbjax batch` process runs every case, saving a JAX start-up per case)",
    )
    _runner_opts(p, c_side=c_side)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=fmt)
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "compare",
        help="run C and nbjax on identical ARGS and compare",
        description="Run C and nbjax on identical ARGS (after --) and compare the float images.",
        epilog=EPILOG,
        formatter_class=fmt,
        usage=f"{PROG} compare [options] -- ARGS...",
    )
    _runner_opts(p)
    p.add_argument(
        "--roi",
        type=int,
        nargs=4,
        metavar=("X0", "X1", "Y0", "Y1"),
        help="restrict every metric to fast pixels X0..X1, slow pixels Y0..Y1 (inclusive, like nanoBragg -roi)",
    )

    p = sub.add_parser(
        "bundle",
        help="compare and keep everything in reports/<topic>/<stamp>/",
        description="Everything compare does, written to "
        "reports/<topic>/<UTC stamp>/ (or --out DIR/<topic>/<stamp>/). " + bundle.__doc__.split("\n\n", 1)[1],
        epilog=EPILOG,
        formatter_class=fmt,
        usage=f"{PROG} bundle --topic NAME [options] -- ARGS...",
    )
    p.add_argument("--topic", required=True, metavar="NAME", help="folder name for this bundle")
    p.add_argument(
        "--pytest",
        nargs="+",
        action="extend",
        metavar="SELECTOR",
        help="also run `python -m pytest SELECTOR...` and keep pytest.log; each "
        'value is split like a shell, so "tests/x.py -k src" passes options',
    )
    p.add_argument(
        "--pytest-timeout",
        type=_positive,
        default=1800.0,
        metavar="S",
        help="seconds before the pytest run is killed (default 1800)",
    )
    p.add_argument("--out", metavar="DIR", default="reports", help="root folder instead of ./reports")
    _runner_opts(p)
    p.add_argument(
        "--roi",
        type=int,
        nargs=4,
        metavar=("X0", "X1", "Y0", "Y1"),
        help="restrict every metric to a window (inclusive pixel indices)",
    )

    p = sub.add_parser(
        "matrix",
        help="compare C and nbjax on every case of a cases.toml",
        description="Run each [[case]] of CASES.toml (format of tests/data/c_golden/cases.toml) through compare.",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("cases", metavar="CASES.toml")
    _case_opts(p, "matrix")

    p = sub.add_parser(
        "replay",
        help="compare nbjax against stored C outputs (no C binary)",
        description="Compare nbjax against the stored C images of a folder laid "
        "out like tests/data/c_golden (DIR/cases.toml, "
        "DIR/<id>/c_float.bin, fixtures in DIR/<id>/).",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    p.add_argument("dir", metavar="DIR")
    _case_opts(p, "replay", c_side=False)

    p = sub.add_parser(
        "lint",
        help="report inputs the C program mishandles",
        description="Report ARGS and input files that the C program mishandles "
        "(error: C fails or writes NaN; warn: the result differs from "
        "what was likely meant; info). ARGS may follow -- or come bare.",
        epilog=EPILOG,
        formatter_class=fmt,
        usage=f"{PROG} lint [--cwd DIR] [--json] [--] ARGS...",
    )
    p.add_argument("--cwd", default=".", metavar="DIR", help="folder the input files are relative to (default .)")
    p.add_argument("--json", action="store_true", help="print findings as JSON")
    return parser


def _split(argv: list[str]) -> tuple[list[str], list[str] | None]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    if argv and argv[0] == "lint" and argv[1:] not in (["-h"], ["--help"]):
        # bare ARGS; leading lint options are still allowed
        head, k = ["lint"], 1
        while k < len(argv) and argv[k] in ("--json", "--cwd"):
            head.append(argv[k])
            if argv[k] == "--cwd" and k + 1 < len(argv):
                head.append(argv[k + 1])
                k += 1
            k += 1
        return head, argv[k:]
    return argv, None


def _check_roi(roi) -> None:
    if roi is None:
        return
    x0, x1, y0, y1 = roi
    if min(roi) < 0 or x1 < x0 or y1 < y0:
        raise UsageError(f"bad --roi {x0} {x1} {y0} {y1}: need 0 <= X0 <= X1 and 0 <= Y0 <= Y1")


def _opts(ns, c_side: bool = True) -> Options:
    _check_roi(getattr(ns, "roi", None))
    c = runners.c_runner(ns.c_bin) if c_side else None
    py = runners.py_runner(ns.py_cmd)
    return Options(
        c=c,
        py=py,
        roi=tuple(ns.roi) if getattr(ns, "roi", None) else None,
        threshold=DEFAULT_THRESHOLD if ns.threshold is None else ns.threshold,
        sum_tol=DEFAULT_SUM_TOL if ns.sum_tol is None else ns.sum_tol,
        timeout=ns.timeout,
    )


def _print_lint(findings, stream) -> None:
    n_err = sum(f.severity == "error" for f in findings)
    print(
        f"lint: {len(findings)} finding(s), {n_err} error(s)" + ("  -- C will fail on this input" if n_err else ""),
        file=stream,
    )
    for f in findings:
        print(f"  {f.line()}", file=stream)


def _cmd_compare(ns, args: list[str], argv: list[str]) -> int:
    opts = _opts(ns)
    out = sys.stdout
    bdir = None
    report = {}
    stamp = bundle.utc_stamp()
    if ns.cmd == "bundle":
        bundle.check_topic(ns.topic)
    with tempfile.TemporaryDirectory(prefix="nbjax-bridge-") as tmp:
        cmp = run_compare(args, Path.cwd(), opts, Path(tmp))
        if ns.cmd == "bundle":
            bdir = bundle.new_bundle_dir(Path(ns.out), ns.topic, stamp)
        _print_lint(cmp.findings, out)
        for res, label in ((cmp.c, "C    "), (cmp.py, "nbjax")):
            print(f"{label}: {res.describe()} ({res.elapsed_s:.3f} s)  {' '.join(res.cmd[:1])}", file=out)
        if bdir is not None:
            selectors = [w for v in (ns.pytest or []) for w in shlex.split(v)]
            report = bundle.write_bundle(cmp, bdir, ns.topic, [PROG] + argv, selectors, ns.pytest_timeout)
    print(cmp.outcome.verdict, file=out)
    for a in cmp.outcome.anomalies:
        print(f"  note: {a}", file=out)
    if cmp.outcome.metrics or cmp.outcome.shape:
        print(metrics_table(cmp.outcome, cmp.c.elapsed_s, cmp.py.elapsed_s), file=out)
    if bdir is not None:
        info = report.get("pytest")
        if info:
            print(f"pytest: exit {info['returncode']} (log: {bdir / 'pytest.log'})", file=out)
        print(f"bundle: {bdir}", file=out)
    return cmp.exit_code


def _default_json(kind: str) -> Path:
    return Path("reports") / kind / f"{bundle.utc_stamp()}.json"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    head, tail = _split(argv)
    try:
        ns = parser.parse_args(head)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else exitcodes.USAGE
    try:
        if ns.cmd in ("compare", "bundle"):
            if not tail:
                raise UsageError(f"{ns.cmd} needs nanoBragg ARGS after --")
            return _cmd_compare(ns, tail, argv)
        if tail is not None and ns.cmd != "lint":
            raise UsageError(f"{ns.cmd} takes no ARGS after --")
        if ns.cmd == "matrix":
            from .matrix import run_matrix

            path = Path(ns.cases)
            if not path.is_file():
                raise exitcodes.InputIOError(f"cases file not found: {path}")
            with shared_process(_opts(ns), not ns.separate_processes) as opts:
                return run_matrix(
                    path, ns.only, opts, Path(ns.json) if ns.json else _default_json("matrix"), ns.threshold, ns.sum_tol
                )
        if ns.cmd == "replay":
            from .replay import run_replay

            with shared_process(_opts(ns, c_side=False), not ns.separate_processes) as opts:
                return run_replay(
                    Path(ns.dir),
                    ns.only,
                    opts,
                    Path(ns.json) if ns.json else _default_json("replay"),
                    ns.threshold,
                    ns.sum_tol,
                )
        if ns.cmd == "lint":
            if not tail:
                raise UsageError("lint needs nanoBragg ARGS")
            if not os.path.isdir(ns.cwd):
                raise UsageError(f"--cwd is not a folder: {ns.cwd}")
            findings = lint.lint(tail, Path(ns.cwd))
            if ns.json:
                import json

                print(json.dumps([f.to_json() for f in findings], indent=2))
            else:
                _print_lint(findings, sys.stdout)
            return exitcodes.LINT_ERRORS if lint.has_errors(findings) else exitcodes.PASS
    except BridgeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {ns.cmd}")
    return exitcodes.USAGE


if __name__ == "__main__":
    sys.exit(main())
