"""The one exception type the CLI turns into a one-line message and a non-zero exit, and the
helpers that put text the user gave (a token, a path, an operating-system error) into one."""

import errno
import os


class NBError(ValueError):
    """Bad input or an unrecoverable condition, described in one line.

    The message names the file, line or flag at fault.  ``exit_code`` is the process
    exit status the CLI uses (9 for the cases where the C program itself exits 9).
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(NBError):
    """Required inputs are missing: the CLI prints the usage, as C does, and exits 9."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=9)


QUOTE_LIMIT = 40


def quote_text(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` made safe to echo inside a one-line message: characters other than printable
    ASCII are written as ``\\xNN``/``\\uNNNN`` escapes and more than ``limit`` characters are cut
    to ``limit`` followed by ``...``.  Plain short text comes back unchanged."""
    if len(text) <= limit and text.isascii() and text.isprintable():
        return text
    head = text[:limit]
    escaped = "".join(c if c.isascii() and c.isprintable() else ascii(c)[1:-1] for c in head)
    return escaped + ("..." if len(text) > limit else "")


PATH_LIMIT = 100  # characters of a path a message shows before it is cut with "..."


def shown_path(path: str | os.PathLike, quoted: bool = False) -> str:
    """``path`` as a one-line message shows it: characters that are not printable escaped,
    cut to ``PATH_LIMIT`` characters followed by ``...`` when longer; ``quoted``: in Python's
    quotes (``repr``), the ``...`` after the closing quote."""
    text = os.fsdecode(path)
    head = text[:PATH_LIMIT]
    tail = "..." if len(text) > PATH_LIMIT else ""
    if quoted:
        return repr(head) + tail
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in head) + tail


def os_error_text(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """The one-line reason of an OSError raised for a file (the shared helper of every reader
    and writer): its ``strerror``, except for a name the system refuses as too long
    (ENAMETOOLONG), which says how long the name, or its longest part, is and what the system
    allows.  ``path``: the name the user gave (default: the error's own file name, which for a
    temporary file beside the target is not the user's)."""
    if exc.errno == errno.ENAMETOOLONG:
        return name_too_long(exc.filename if path is None else path)
    return exc.strerror or str(exc)


def name_too_long(path: str | os.PathLike | None) -> str:
    """Why the system refuses ``path`` as too long: a part of it longer than the file system's
    NAME_MAX, or the whole longer than PATH_MAX (both from ``pathconf`` where the system says,
    else Linux's 255 and 4096, which counts the terminating NUL)."""
    if path is None:
        return "the file name is too long for the system"
    raw = os.fsencode(path)
    folder = os.path.dirname(raw)
    while folder and not os.path.isdir(folder):  # the limits of the file system it would be on
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    folder = folder or b"."
    name_max, path_max = _pathconf(folder, "PC_NAME_MAX", 255), _pathconf(folder, "PC_PATH_MAX", 4096)
    longest = max(raw.split(b"/"), key=len)
    unit = "characters" if raw.isascii() else "bytes"
    if len(longest) > name_max:
        return f"the file name is too long (a name of {len(longest)} {unit} in it; the system allows {name_max})"
    if len(raw) >= path_max:
        return f"the file name is too long ({len(raw)} {unit}; the system allows {path_max - 1})"
    return "the file name is too long for the system"


def _pathconf(folder: bytes, name: str, default: int) -> int:
    try:
        value = os.pathconf(folder, name)
    except (OSError, ValueError):
        return default
    return value if value > 0 else default
