"""The one base of every error a person can cause and fix.

It lives at the bottom of the house (:mod:`sync` imports nothing of packline's) so
that every library can derive its person-facing errors from it — a bad device URL
(:class:`drivers.errors.DriverError`), a database that cannot be opened
(:class:`central.db.DatabaseUnavailable`), a station store that is not a database
(:class:`edge.store.StoreUnusable`) — and the command line catches this one class.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A mistake a person can fix (missing file, bad URL, unreachable broker).

    ``str()`` is the whole message shown: one line naming the problem and, where it
    is not obvious, what to do. The command line prints it and exits with code 2.
    """
