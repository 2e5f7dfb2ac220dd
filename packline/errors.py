"""Errors a person can cause: they end a command with one clear line and exit code 2."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake a person can fix (missing file, bad URL, unreachable broker).

    ``str()`` is the whole message shown; the CLI prints it on one line and exits 2.
    """
