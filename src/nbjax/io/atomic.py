"""Atomic file writes: write to a temporary file beside the target, then rename.

``check_writable`` tells, before any work, whether a path can be written (the C program only
finds out after rendering, and exits 9); ``StagedWrites`` writes a run's files to temporary
files and renames them all at the end, so a run leaves all of its files or none.
"""

import os
import tempfile
from pathlib import Path

from nbjax.errors import NBError

OUTPUT_EXIT = 9  # the C program's exit status when it cannot open an output file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _folder(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def _stage_bytes(path, data: bytes, label: str) -> str:
    """Write ``data`` to a new temporary file beside ``path``; returns its name."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=_folder(target))
    except OSError as exc:
        raise NBError(f"{label}cannot write {path}: {exc.strerror}", OUTPUT_EXIT) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # what fopen() would create; mkstemp makes 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise NBError(f"{label}cannot write {path}: {exc.strerror}", OUTPUT_EXIT) from None
    return tmp


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader never sees a half-written file.

    Raises NBError (one line, naming the path) when the folder is missing or unwritable.
    """
    tmp = _stage_bytes(path, data, "")
    try:
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise NBError(f"cannot write {path}: {exc.strerror}", OUTPUT_EXIT) from None


def check_writable(path: str, flag: str) -> None:
    """Raise NBError (exit 9, naming ``flag`` and the path) unless ``path`` can be written.

    The folder is probed by creating and removing a temporary file in it, so the answer is the
    operating system's (a read-only folder is writable for root, and says so here too).
    """
    label = f"{flag} {path!r}" if path else flag
    if not path:
        raise NBError(f"{flag}: the file name is empty", OUTPUT_EXIT)
    target = Path(path)
    folder = _folder(target)
    if target.is_dir():
        raise NBError(f"{label}: is a folder, not a file name", OUTPUT_EXIT)
    if not folder.is_dir():
        existing, missing = folder, folder
        while not existing.exists():
            existing, missing = existing.parent, existing
        if not existing.is_dir():
            raise NBError(f"{label}: cannot write there: {str(existing)!r} is a file, not a folder", OUTPUT_EXIT)
        raise NBError(f"{label}: cannot write there: folder {str(missing)!r} does not exist", OUTPUT_EXIT)
    if target.exists() and not os.access(target, os.W_OK):
        raise NBError(f"{label}: the file exists and is read-only", OUTPUT_EXIT)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        raise NBError(f"{label}: cannot write in folder {str(folder)!r}: {exc.strerror}", OUTPUT_EXIT) from None
    os.close(fd)
    os.unlink(tmp)


class StagedWrites:
    """A run's output files: ``stage`` writes each to a temporary file beside its target,
    ``commit`` renames them all into place, ``discard`` removes them.  Use as a context
    manager: leaving it by an exception discards whatever was staged."""

    def __init__(self):
        self._staged: list[tuple[str, str]] = []

    def stage(self, path: str | os.PathLike, data: bytes) -> None:
        self._staged.append((_stage_bytes(path, data, ""), os.fspath(path)))

    def commit(self) -> None:
        try:
            while self._staged:
                tmp, path = self._staged[0]
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise NBError(f"cannot write {path}: {exc.strerror}", OUTPUT_EXIT) from None
                self._staged.pop(0)
        finally:
            self.discard()

    def discard(self) -> None:
        for tmp, _ in self._staged:
            Path(tmp).unlink(missing_ok=True)
        self._staged.clear()

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:
            self.discard()
        return False
