"""Atomic file writes: write to a temporary file beside the target, then rename.

``check_writable`` tells, before any work, whether a path can be written (the C program only
finds out after rendering, and exits 9); ``StagedWrites`` writes a run's files to temporary
files and renames them all at the end, so a run leaves all of its files or none.
"""

import errno
import os
import tempfile
from pathlib import Path

from nbjax.errors import NBError, os_error_text, shown_path

OUTPUT_EXIT = 9  # the C program's exit status when it cannot open an output file
TEMP_NAME_KEEP = 64  # characters of the target's name in its temporary file's name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _folder(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def _temp_prefix(target: Path) -> str:
    """The start of a temporary file's name beside ``target``: its name cut short, so that a
    name the system allows for the target is allowed for the temporary file too."""
    return f".{target.name[:TEMP_NAME_KEEP]}."


def _cannot_write(path, exc: OSError, label: str = "") -> NBError:
    return NBError(f"{label}cannot write {shown_path(path)}: {os_error_text(exc, path)}", OUTPUT_EXIT)


def _stage_bytes(path, data: bytes, label: str) -> str:
    """Write ``data`` to a new temporary file beside ``path``; returns its name."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=_folder(target))
    except OSError as exc:
        raise _cannot_write(path, exc, label) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # what fopen() would create; mkstemp makes 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _cannot_write(path, exc, label) from None
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
        raise _cannot_write(path, exc) from None


def check_writable(path: str, flag: str) -> None:
    """Raise NBError (exit 9, naming ``flag`` and the path) unless ``path`` can be written.

    The folder is probed by creating and removing a temporary file in it, so the answer is the
    operating system's (a read-only folder is writable for root, and says so here too).  A name
    longer than the system allows (a part over NAME_MAX, the whole over PATH_MAX) is refused
    saying so (``errors.name_too_long``), as is any other error the system gives.
    """
    label = f"{flag} {shown_path(path, quoted=True)}" if path else flag
    if not path:
        raise NBError(f"{flag}: the file name is empty", OUTPUT_EXIT)
    target = Path(path)
    folder = _folder(target)
    try:
        _check_place(target, folder, label)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".probe", dir=folder)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise NBError(f"{label}: {os_error_text(exc, path)}", OUTPUT_EXIT) from None
        where = shown_path(folder, quoted=True)
        raise NBError(f"{label}: cannot write in folder {where}: {os_error_text(exc)}", OUTPUT_EXIT) from None
    os.close(fd)
    os.unlink(tmp)


def _check_place(target: Path, folder: Path, label: str) -> None:
    """NBError when ``target`` is a folder, its folder is missing or is a file, or it is a
    read-only file; OSError where the system refuses to say (a name too long, say)."""
    if target.is_dir():
        raise NBError(f"{label}: is a folder, not a file name", OUTPUT_EXIT)
    if not folder.is_dir():
        existing, missing = folder, folder
        while not existing.exists():
            existing, missing = existing.parent, existing
        if not existing.is_dir():
            where = shown_path(existing, quoted=True)
            raise NBError(f"{label}: cannot write there: {where} is a file, not a folder", OUTPUT_EXIT)
        raise NBError(
            f"{label}: cannot write there: folder {shown_path(missing, quoted=True)} does not exist", OUTPUT_EXIT
        )
    if target.exists() and not os.access(target, os.W_OK):
        raise NBError(f"{label}: the file exists and is read-only", OUTPUT_EXIT)


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
                    raise _cannot_write(path, exc) from None
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
