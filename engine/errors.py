"""The one error type users can act on: a message saying what went wrong and a hint naming the fix."""
from __future__ import annotations


class UserFacingError(Exception):
    """Something the user can fix. The GUI shows message + hint; the CLI prints them and exits non-zero."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


class Cancelled(Exception):
    """The user cancelled the operation; nothing was left half-written."""
