"""Which central process does the once-per-site duties: the leader.

Several ``packline central serve`` processes may share one PostgreSQL database: each
stores the batches the broker's shared subscription hands it, but some things must
happen once per site — the watch's ticks and the alert outbox, the orders downlink,
the acks that tell each station central's time. The process holding a PostgreSQL
advisory lock (:data:`LOCK_CLASS`, a number from the site's name) on a connection of
its own does them. The lock is tied to that connection, not to a transaction: when
the process dies or its connection breaks, PostgreSQL releases it and the next process
that tries takes it, within ``check_every`` seconds. The holder checks its connection
just as often and stops leading as soon as it fails.

Two leaders at once can happen for at most ``check_every`` seconds (a leader whose
connection died silently has not noticed yet); every duty is safe to run twice (orders
carry revisions, a clock message says the same thing twice, ticks claim their timers
with ``UPDATE … RETURNING``), so that costs nothing but a repeat.

With SQLite (one process per database file) the only process is always the leader.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import zlib
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from central.db import error_reason

__all__ = ["LOCK_CLASS", "Leadership", "default_worker_name", "lock_key"]

log = logging.getLogger(__name__)

#: The first half of the advisory lock's key: "PKLN", so it cannot meet another
#: application's locks on the same database.
LOCK_CLASS = 0x504B4C4E


def lock_key(site: str) -> int:
    """The second half of the key: a signed 32-bit number from the site's name."""
    value = zlib.crc32(f"packline-leader:{site}".encode())
    return value - (1 << 32) if value >= (1 << 31) else value


def default_worker_name() -> str:
    """``host-pid``: what a process calls itself when no ``--worker`` name is given."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Leadership:
    """Whether this process leads ``site``; :attr:`is_leader` answers at any time.

    ``start()`` begins trying (at once, then every ``check_every`` seconds) in a
    thread; ``stop()`` lets go of the lock. ``on_change(leading)`` is called from
    that thread each time this process becomes or stops being the leader.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        site: str,
        worker: str = "",
        check_every: float = 1.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.site = site
        self.worker = worker or default_worker_name()
        self.check_every = check_every
        self.on_change = on_change
        self.shared = engine.dialect.name == "postgresql"
        # One connection outside the pool: the lock lives as long as it does.
        self._engine = sa.create_engine(engine.url, poolclass=NullPool) if self.shared else None
        self._conn: Connection | None = None
        self._leading = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        if not self.shared:
            self._leading.set()

    @property
    def is_leader(self) -> bool:
        """True while this process does the once-per-site duties."""
        return self._leading.is_set()

    def wait_leader(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s to become the leader."""
        return self._leading.wait(timeout)

    def start(self) -> None:
        """Try to lead now and keep trying (PostgreSQL); nothing to do for SQLite."""
        if not self.shared or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="central-leader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop trying and let the lock go, so another process takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._release()
        if self._engine is not None:
            self._engine.dispose()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self.check_every)

    def check(self) -> bool:
        """One round: keep the lock (checking its connection) or try to take it."""
        try:
            leading = self._hold() if self.is_leader else self._try()
            self._failing = False
        except sa.exc.SQLAlchemyError as exc:
            if not self._failing:
                reason = error_reason(exc)
                log.warning("the leader lock's connection failed: %s; trying again", reason)
            self._failing = True
            self._release()
            leading = False
        self._set(leading)
        return leading

    def _connection(self) -> Connection:
        if self._conn is None:
            assert self._engine is not None
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _try(self) -> bool:
        got = (
            self._connection()
            .execute(
                sa.text("SELECT pg_try_advisory_lock(:c, :k)"),
                {"c": LOCK_CLASS, "k": lock_key(self.site)},
            )
            .scalar_one()
        )
        return bool(got)

    def _hold(self) -> bool:
        # Still our lock on a live connection? (A restarted server, or a connection
        # a firewall cut, took the lock with it.)
        held = (
            self._connection()
            .execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND classid::bigint = :c AND objid::bigint = :o"
                ),
                {"c": LOCK_CLASS, "o": lock_key(self.site) & 0xFFFFFFFF},
            )
            .scalar_one()
        )
        return bool(held)

    def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            conn.close()  # closing the session frees its advisory locks

    def _set(self, leading: bool) -> None:
        if leading == self.is_leader:
            return
        if leading:
            self._leading.set()
            log.info(
                "worker %s leads site %s (ticks, orders downlink, clock)", self.worker, self.site
            )
        else:
            self._leading.clear()
            self._release()
            log.warning("worker %s no longer leads site %s", self.worker, self.site)
        if self.on_change is not None:
            try:
                self.on_change(leading)
            except Exception:
                log.exception("a listener of the leadership failed")
