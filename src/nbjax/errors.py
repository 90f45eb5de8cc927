"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


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
