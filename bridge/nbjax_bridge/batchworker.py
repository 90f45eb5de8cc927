"""One nbjax process for a whole case list (``matrix``, ``replay``).

Starting nbjax costs a JAX import and a compilation per process (seconds), far more than a small
case's render.  When the nbjax side is nbjax itself (``python -m nbjax`` or the ``nbjax`` script),
the case loop keeps one ``nbjax batch -`` process and sends it each case as a ``cd RUN_DIR`` line
and an ARGS line whose standard output and error go to the same files a separate process's
would; the batch answers with a status line.  Outputs, verdicts and exit codes are those of
separate processes.  A case past the timeout has the process group killed (status timeout); a
crash (killed by a signal) is reported for its case; either way the next case starts a fresh
process.  ``--separate-processes`` turns this off.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from .exitcodes import UsageError

NBJAX_NAMES = ("nbjax",)


def is_nbjax(cmd: list[str]) -> bool:
    """True for ``PYTHON -m nbjax`` and the ``nbjax`` console script (not for other programs)."""
    return cmd[1:] == ["-m", "nbjax"] or (len(cmd) == 1 and os.path.basename(cmd[0]) in NBJAX_NAMES)


class BatchWorker:
    """A ``nbjax batch -`` process fed one case at a time (module docstring)."""

    def __init__(self, cmd: list[str]):
        from nbjax.cli.batch import REDIRECT_PREFIXES, STATUS_LINE

        self.cmd = list(cmd) + ["batch", "-"]
        self.status_line = STATUS_LINE
        self.redirects = REDIRECT_PREFIXES
        self.proc: subprocess.Popen | None = None
        self.lines = 0  # lines sent to the current process
        self.buffer = b""

    def accepts(self, argv: list[str]) -> bool:
        """False for ARGS a batch line cannot carry (a word that reads as a redirection)."""
        return not any(word.startswith(self.redirects) for word in argv)

    def _start(self) -> None:
        try:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise UsageError(f"cannot start {self.cmd[0]}: {exc.strerror or exc}") from None
        self.lines, self.buffer = 0, b""

    def _kill(self) -> int:
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()

    def run(self, argv: list[str], run_dir: Path, out: Path, err: Path, timeout: float | None) -> tuple[int, bool]:
        """Run one case: (exit status, negative for a signal; timed out)."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        request = (
            f"cd {shlex.quote(str(run_dir))}\n"
            f"{shlex.join(['nbjax', *argv])} >{shlex.quote(str(out))} 2>{shlex.quote(str(err))}\n"
        )
        self.lines += 2
        number = self.lines
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            try:
                self.proc.stdin.write(request.encode())
                self.proc.stdin.flush()
            except BrokenPipeError:
                return self._kill() or 1, False
            while True:
                code = self._status(number)
                if code is not None:
                    return code, False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self._kill()
                    return -signal.SIGKILL, True
                ready, _, _ = select.select([self.proc.stdout], [], [], left)
                if ready:
                    chunk = os.read(self.proc.stdout.fileno(), 65536)
                    if not chunk:  # the process ended during the case: a crash
                        return self._kill() or 1, False
                    self.buffer += chunk
        except BaseException:
            self._kill()
            raise

    def _status(self, number: int) -> int | None:
        """The exit status reported for line ``number`` if it is in the buffer."""
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            match = self.status_line.match(line.decode(errors="replace"))
            if match and int(match.group(1)) == number:
                return int(match.group(2))
        return None

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc = proc
            self._kill()


@contextlib.contextmanager
def shared_process(opts, enabled: bool = True):
    """``opts`` with its nbjax runner running every case in one process, when the runner is
    nbjax itself and ``enabled``; the process ends with the block."""
    if not enabled or not is_nbjax(opts.py.cmd):
        yield opts
        return
    worker = BatchWorker(opts.py.cmd)
    try:
        yield replace(opts, py=replace(opts.py, shared=worker))
    finally:
        worker.close()
