"""List files of the commands (``nbjax fit -shots``, ``nbjax ensemble``): one item per line,
words split as a shell splits them, ``#`` comments and blank lines skipped, paths relative to
the list's folder."""

from __future__ import annotations

import os
import shlex

from nbjax.errors import NBError, os_error_text, shown_path


def list_lines(path: str) -> list[tuple[int, str, list[str]]]:
    """(line number, line, words) of every line with words; one-line errors for an unreadable
    file or unbalanced quotes."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise NBError(f"cannot read {shown_path(path)}: {os_error_text(exc, path)}") from None
    out = []
    for number, line in enumerate(lines, 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise NBError(f"{path} line {number}: {exc}") from None
        if words:
            out.append((number, line, words))
    return out


def beside(path: str, word: str) -> str:
    """``word`` as a path: absolute as given, else relative to the folder of the list ``path``."""
    return word if os.path.isabs(word) else os.path.join(os.path.dirname(os.path.abspath(path)), word)
