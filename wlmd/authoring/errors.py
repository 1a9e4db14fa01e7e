"""What authoring refuses, as exceptions that carry one line for a person or a script.

Every refusal is an :class:`AuthoringError` whose ``reason`` is the text a
command-line tool prints after ``wlmctl:`` and a REST layer would put in its
JSON error: for an entry the server would skip, exactly the server's own
skip reason (see :mod:`wlmd.authoring.verdict`).
"""

from __future__ import annotations


class AuthoringError(Exception):
    """Something authoring could not do; ``reason`` is one line without patient data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EntryRejected(AuthoringError):
    """The entry would be skipped by the server; ``reason`` is the server's text."""


class BadInput(AuthoringError):
    """The input cannot be turned into an entry (unreadable JSON or dump text, bad flag)."""


class AreaProblem(AuthoringError):
    """The storage area cannot be written (missing, no lockfile, permissions)."""


class LockTimeout(AreaProblem):
    """The area's write lock was not obtained in time; the reason names the holder."""


class NotFound(AuthoringError):
    """No entry of that name (or matching that selection) in the area."""
