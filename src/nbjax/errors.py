"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class NBError(Exception):
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
