"""Run one program (the C binary or nbjax) on prepared ARGS in its own folder.

A runner is a command prefix (``[c_bin]`` or ``[python, -m, nbjax]``). It runs in a new process
group so a hang past the timeout can be killed with all its children. stdout/stderr go to files
beside (not inside) the run folder.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nbjax import environment

from .exitcodes import UsageError

ENV_C_BIN = "NB_C_BIN"

# statuses
OK = "ok"
SIGNALED = "signal"
NONZERO = "nonzero"
TIMEOUT = "timeout"
NO_IMAGE = "noimage"


@dataclass
class Runner:
    label: str  # "c" or "py"
    cmd: list[str]  # command prefix; ARGS are appended
    shared: object = None  # a batchworker.BatchWorker running every ARGS in one nbjax process

    @property
    def display(self) -> str:
        return shlex.join(self.cmd)


def default_py_cmd() -> list[str]:
    return [sys.executable, "-m", "nbjax"]


def _check_program(cmd: list[str], what: str) -> None:
    if not cmd:
        raise UsageError(f"{what} command is empty")
    prog = cmd[0]
    if os.sep in prog or (os.altsep and os.altsep in prog):
        p = Path(prog)
        if not p.exists():
            raise UsageError(f"{what} not found: {prog}")
        if p.is_dir() or not os.access(p, os.X_OK):
            raise UsageError(f"{what} is not executable: {prog}")
    elif shutil.which(prog) is None:
        raise UsageError(f"{what} not found on PATH: {prog}")


def c_runner(c_bin: str | None) -> Runner:
    """The C side: --c-bin, else $NB_C_BIN. Checked before anything runs."""
    path = c_bin or environment.get(ENV_C_BIN)
    if not path:
        raise UsageError(f"no C binary: pass --c-bin PATH or set {ENV_C_BIN}")
    if os.sep not in path and shutil.which(path) is None and Path(path).exists():
        path = "./" + path  # a bare name in the current folder
    _check_program([path], "C binary")
    # absolute, but symlinks are kept (a venv's python is a symlink that must stay one)
    resolved = shutil.which(path) if os.sep not in path else os.path.abspath(path)
    return Runner("c", [resolved or path])


def py_runner(py_cmd: str | None) -> Runner:
    """The nbjax side: --py-cmd (split like a shell would), else ``python -m nbjax``."""
    try:
        cmd = shlex.split(py_cmd) if py_cmd else default_py_cmd()
    except ValueError as exc:
        raise UsageError(f"cannot parse --py-cmd: {exc}") from None
    _check_program(cmd, "nbjax command")
    if os.sep in cmd[0]:
        cmd[0] = os.path.abspath(cmd[0])
    return Runner("py", cmd)


@dataclass
class RunResult:
    label: str
    cmd: list[str]
    cwd: Path
    stdout_path: Path
    stderr_path: Path
    float_path: Path
    returncode: int | None = None
    signal_name: str | None = None
    timed_out: bool = False
    elapsed_s: float = 0.0
    status: str = OK
    env: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status != OK

    @property
    def has_image(self) -> bool:
        return self.float_path.is_file() and self.float_path.stat().st_size > 0

    def stdout(self) -> str:
        return _read_text(self.stdout_path)

    def stderr(self) -> str:
        return _read_text(self.stderr_path)

    def describe(self) -> str:
        if self.status == SIGNALED:
            return f"killed by {self.signal_name}"
        if self.status == TIMEOUT:
            return f"timed out after {self.elapsed_s:.1f} s (process group killed)"
        if self.status == NONZERO:
            return f"exited with code {self.returncode}"
        if self.status == NO_IMAGE:
            return "exited 0 but wrote no float image"
        return "ok"

    @property
    def fault_dir_name(self) -> str | None:
        """Folder the bundle keeps a failed runner's outputs in (None when it succeeded)."""
        if self.status == OK:
            return None
        if self.status == SIGNALED:
            return f"{self.label}_segfault" if self.signal_name == "SIGSEGV" else f"{self.label}_crash"
        if self.status == TIMEOUT:
            return f"{self.label}_timeout"
        return f"{self.label}_failure"

    def to_json(self) -> dict:
        return {
            "cmd": self.cmd,
            "cwd": str(self.cwd),
            "status": self.status,
            "returncode": self.returncode,
            "signal": self.signal_name,
            "timed_out": self.timed_out,
            "elapsed_s": round(self.elapsed_s, 4),
            "description": self.describe(),
        }


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def run(
    runner: Runner,
    argv: list[str],
    run_dir: Path,
    float_name: str,
    timeout: float | None,
    env: dict[str, str] | None = None,
) -> RunResult:
    """Run ``runner.cmd + argv`` in run_dir; never raises for a failing program.  With a shared
    nbjax process (``runner.shared``) and no special environment, ARGS run in that process."""
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir.parent / f"{run_dir.name}.stdout"
    err = run_dir.parent / f"{run_dir.name}.stderr"
    cmd = runner.cmd + list(argv)
    full_env = dict(os.environ if env is None else env)
    res = RunResult(runner.label, cmd, run_dir, out, err, run_dir / float_name, env=full_env)
    if runner.shared is not None and env is None and runner.shared.accepts(argv):
        t0 = time.perf_counter()
        returncode, timed_out = runner.shared.run(argv, run_dir, out, err, timeout)
        res.elapsed_s = time.perf_counter() - t0
        return classify(res, returncode, timed_out)
    t0 = time.perf_counter()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        try:
            proc = subprocess.Popen(
                cmd, cwd=run_dir, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=full_env, start_new_session=True
            )
        except OSError as exc:
            raise UsageError(f"cannot start {runner.label} runner {cmd[0]}: {exc.strerror or exc}") from None
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            res.timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
    res.elapsed_s = time.perf_counter() - t0
    return classify(res, proc.returncode, res.timed_out)


def classify(res: RunResult, returncode: int, timed_out: bool) -> RunResult:
    """Set the status of a finished run from its exit status (negative: killed by a signal)."""
    res.returncode = returncode
    res.timed_out = timed_out
    if timed_out:
        res.status = TIMEOUT
        res.signal_name = "SIGKILL"
    elif returncode < 0:
        res.status = SIGNALED
        res.signal_name = _signal_name(-returncode)
    elif returncode != 0:
        res.status = NONZERO
    elif not res.has_image:
        res.status = NO_IMAGE
    return res


def run_logged(cmd: list[str], cwd: Path, log_path: Path, timeout: float | None) -> tuple[int | None, bool, float]:
    """Run cmd with stdout+stderr into log_path: (returncode, timed_out, seconds)."""
    t0 = time.perf_counter()
    timed_out = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    return proc.returncode, timed_out, time.perf_counter() - t0
