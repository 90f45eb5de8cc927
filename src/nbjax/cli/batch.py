"""``nbjax batch FILE``: many nanoBragg command lines in one process.

One JAX start-up and one compilation per distinct image shape serve every line, instead of one
of each per process.  FILE (``-`` for standard input, read and run line by line as it arrives):

* one nanoBragg command line per line, split like a POSIX shell splits words (``shlex``: quotes
  and backslashes work; an unquoted ``#`` starts a comment, even inside a word, so quote file
  names that contain one); blank and comment-only lines are skipped.  A
  leading program word (``nanoBragg``, ``nbjax``, or a path ending in either) is dropped, so lines
  of a shell script can be used as they are;
* ``cd DIR``: later lines run in DIR (relative to the current batch folder; the batch starts in the
  folder ``nbjax batch`` was started in), as in a shell script;
* a word ``>FILE`` or ``> FILE`` sends that line's standard output, ``2>FILE`` or ``2> FILE`` its
  standard error, to FILE (relative to the line's folder, overwritten); otherwise both go to the
  batch's own.  (Such a word cannot be a nanoBragg argument.)

Every line writes the files it would write as a process of its own.  After each line the batch
prints ``nbjax batch: line N: exit CODE (SECONDS s)`` to its standard output, and at the end a
summary; one line's failure does not stop the others.  Exit status: 0 when every line exited 0,
1 when any line failed, 2 when FILE cannot be read, 130 when interrupted.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass

from nbjax.errors import os_error_text, shown_path

PROGRAM_NAMES = ("nanoBragg", "nbjax")
HELP_FLAGS = ("-h", "--help", "-help")
REDIRECT_PREFIXES = ("2>", ">")  # standard error first: "2>x" also starts with no ">"
STATUS_PREFIX = "nbjax batch: line "
STATUS_LINE = re.compile(r"nbjax batch: line (\d+): exit (-?\d+) \(([0-9.]+) s\)$")
USAGE = "usage: nbjax batch FILE|-   (one nanoBragg command line per line; see `nbjax batch -h`)"


@dataclass
class Line:
    """One command line of a batch file: its argv and where its output goes."""

    number: int
    argv: list[str]
    stdout: str | None = None
    stderr: str | None = None
    cd: str | None = None  # a ``cd DIR`` line (argv empty)
    error: str | None = None  # the line cannot be parsed


def parse_line(number: int, text: str) -> Line | None:
    """The Line for one line of a batch file, None for a blank or comment line."""
    try:
        words = shlex.split(text, comments=True)
    except ValueError as exc:
        return Line(number, [], error=f"cannot split the line: {exc}")
    if not words:
        return None
    if words[0] == "cd":
        if len(words) != 2:
            return Line(number, [], error="cd takes one folder")
        return Line(number, [], cd=words[1])
    if os.path.basename(words[0]) in PROGRAM_NAMES:
        words = words[1:]
    line = Line(number, [])
    i = 0
    while i < len(words):
        word = words[i]
        for prefix, attr in zip(REDIRECT_PREFIXES, ("stderr", "stdout"), strict=True):
            if word.startswith(prefix):
                target = word[len(prefix) :]
                if not target:
                    i += 1
                    if i == len(words):
                        return Line(number, [], error=f"'{prefix}' needs a file name")
                    target = words[i]
                setattr(line, attr, target)
                break
        else:
            line.argv.append(word)
        i += 1
    return line


@contextlib.contextmanager
def _redirected(stdout_path: str | None, stderr_path: str | None):
    """Point file descriptors 1 and 2 (and so sys.stdout/sys.stderr, and any C library output)
    at the given files for the duration; None leaves a stream alone."""
    saved = []
    try:
        for fd, path, stream in ((1, stdout_path, sys.stdout), (2, stderr_path, sys.stderr)):
            if path is None:
                continue
            stream.flush()
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            saved.append((fd, os.dup(fd), stream))
            os.dup2(target, fd)
            os.close(target)
        yield
    finally:
        for fd, copy, stream in reversed(saved):
            stream.flush()
            os.dup2(copy, fd)
            os.close(copy)


def run_argv(argv: list[str]) -> int:
    """One nanoBragg command line through the CLI's own entry point (its messages, its exit
    codes), without leaving the process."""
    from nbjax.cli import main as cli_main

    try:
        code = cli_main.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run_batch(lines, status, err=None) -> int:
    """Run the batch lines (an iterable of text lines); status lines go to ``status``."""
    err = err or sys.stderr
    start = os.getcwd()
    folder = start
    failed: list[int] = []
    total = 0
    try:
        for number, text in enumerate(lines, start=1):
            line = parse_line(number, text)
            if line is None:
                continue
            if line.cd is not None:
                folder = os.path.normpath(os.path.join(folder, os.path.expanduser(line.cd)))
                if os.path.isdir(folder):
                    continue
                line.error = f"no folder {folder}"  # reported, and counted as a failed line
            total += 1
            t0 = time.perf_counter()
            code = _run_line(line, folder, err)
            print(f"{STATUS_PREFIX}{number}: exit {code} ({time.perf_counter() - t0:.3f} s)", file=status, flush=True)
            if code != 0:
                failed.append(number)
            if code == 130:  # interrupted (the CLI turned Ctrl-C into exit 130): stop here
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("nbjax batch: interrupted", file=status, flush=True)
        return 130
    finally:
        os.chdir(start)
    listed = ", ".join(str(n) for n in failed[:20]) + (", ..." if len(failed) > 20 else "")
    print(
        f"nbjax batch: {total} line(s): {total - len(failed)} ok, {len(failed)} failed"
        + (f" (lines {listed})" if failed else ""),
        file=status,
        flush=True,
    )
    return 1 if failed else 0


def _run_line(line: Line, folder: str, err) -> int:
    if line.error is not None:
        print(f"nbjax: error: batch line {line.number}: {line.error}", file=err, flush=True)
        return 2
    try:
        os.chdir(folder)
    except OSError as exc:
        print(
            f"nbjax: error: batch line {line.number}: cannot enter {shown_path(folder)}: {os_error_text(exc, folder)}",
            file=err,
            flush=True,
        )
        return 2
    try:
        with _redirected(line.stdout, line.stderr):
            return run_argv(line.argv)
    except OSError as exc:  # an output file that cannot be opened
        name = shown_path(exc.filename) if exc.filename is not None else "?"
        print(f"nbjax: error: batch line {line.number}: {name}: {os_error_text(exc)}", file=err, flush=True)
        return 2


def main(argv: list[str], out=sys.stdout, err=sys.stderr) -> int:
    """``nbjax batch FILE|-``; returns the exit status.  The status lines go to the process's
    standard output (file descriptor 1: a line's own output may be redirected meanwhile)."""
    if argv[:1] and argv[0] in HELP_FLAGS:
        print(__doc__, file=out)
        return 0
    if len(argv) != 1:
        print(USAGE, file=err)
        return 2
    # the status lines keep the batch's own standard output while a line's output is redirected
    status = os.fdopen(os.dup(1), "w", buffering=1)
    try:
        if argv[0] == "-":
            return run_batch(iter(sys.stdin.readline, ""), status, err)
        try:
            with open(argv[0], encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError as exc:
            print(f"nbjax: error: batch file {shown_path(argv[0])}: {os_error_text(exc, argv[0])}", file=err)
            return 2
        return run_batch(text.split("\n"), status, err)
    finally:
        status.close()
