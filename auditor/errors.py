"""Errors the user can fix: one line of explanation, exit code 2, never a traceback."""
from __future__ import annotations


class AuditorError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))
