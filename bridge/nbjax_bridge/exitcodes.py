"""Exit codes of ``nbjax-bridge`` (also printed in every ``--help`` epilog).

When several apply, the most fundamental wins: usage > I/O > runner failure > shape > threshold.
"""

PASS = 0
"""Both runners succeeded and every metric met its threshold (lint: no error findings)."""

USAGE = 2
"""Bad command line: unknown option, missing ARGS, missing or non-executable binary, bad ROI."""

RUNNER_FAILURE = 3
"""A runner crashed (killed by a signal), exited non-zero, ran past --timeout, or wrote no image."""

BELOW_THRESHOLD = 4
"""Images have the same shape but correlation, sum ratio or finiteness fail the thresholds."""

SHAPE_MISMATCH = 5
"""The two float images differ in size (or in the fpixels x spixels the runners report)."""

IO_ERROR = 6
"""An input file named in ARGS is missing, or a report/bundle could not be written or read."""

LINT_ERRORS = 7
"""``lint`` only: at least one error-severity finding (C will fail or produce NaN)."""

MEANING = {
    PASS: "pass",
    USAGE: "usage error",
    RUNNER_FAILURE: "runner failure (crash, timeout, non-zero exit or no image)",
    BELOW_THRESHOLD: "below threshold",
    SHAPE_MISMATCH: "shape mismatch",
    IO_ERROR: "I/O error",
    LINT_ERRORS: "lint found errors",
}

# Order used to combine per-case results (matrix, replay): the first present wins.
PRIORITY = (USAGE, IO_ERROR, RUNNER_FAILURE, SHAPE_MISMATCH, BELOW_THRESHOLD, LINT_ERRORS, PASS)


def worst(codes) -> int:
    """The most fundamental of several exit codes (PASS when the list is empty)."""
    present = set(codes)
    for code in PRIORITY:
        if code in present:
            return code
    return max(present) if present else PASS


EPILOG = "exit codes:\n" + "\n".join(
    f"  {code}  {MEANING[code]}"
    for code in (PASS, USAGE, RUNNER_FAILURE, BELOW_THRESHOLD, SHAPE_MISMATCH, IO_ERROR, LINT_ERRORS)
)


class BridgeError(Exception):
    """A user-facing error: printed as one line, mapped to an exit code, never a traceback."""

    code = USAGE

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class UsageError(BridgeError):
    code = USAGE


class InputIOError(BridgeError):
    code = IO_ERROR
