"""User-facing errors: one line naming the file or field and the problem, never a traceback."""

from __future__ import annotations


class GreenperfError(Exception):
    """An error caused by the user's input or environment.

    The CLI prints ``str(err)`` on one line and exits with ``exit_code``.
    ``where`` names the file or field at fault so the message can point at it.
    """

    exit_code = 1

    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        self.problem = problem
        super().__init__(f"{where}: {problem}")


class UsageError(GreenperfError):
    """Bad command-line usage or configuration (exit code 2)."""

    exit_code = 2


class CheckFailed(GreenperfError):
    """A validation check found problems (exit code 1)."""

    exit_code = 1
