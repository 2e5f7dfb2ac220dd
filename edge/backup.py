"""``packline edge backup``: a consistent copy of the station store.

For a Pi whose SD card is being replaced while events are not yet synced: the copy is
taken with SQLite's online backup API in one read transaction, so it is safe while
the agent runs (in WAL mode the agent is not even held up), and it stands alone (one
file, no ``-wal`` beside it). Put it back as ``DATA_DIR/STATION.sqlite`` on the new
card before the first ``packline edge run``: the outbox in it is sent as usual, and
central drops what it already holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import sqlite3
from pathlib import Path

from sync.errors import UserError

__all__ = ["StoreBackupError", "backup_station_store"]


class StoreBackupError(UserError, RuntimeError):
    """The station store cannot be copied; ``str()`` says why, on one line."""


def backup_station_store(
    store: Path, to: Path, *, station: str, now: dt.datetime | None = None
) -> str:
    """Copy ``store`` into the folder ``to``; returns one line saying what was copied.

    The copy is ``STATION-YYYYMMDDTHHMMSSZ.sqlite`` with its SHA-256 in a ``.sha256``
    file beside it (``sha256sum -c`` reads it).
    """
    now = now or dt.datetime.now(dt.UTC)
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreBackupError(f"cannot create the backup folder {to}: {exc.strerror}") from None
    stamp = f"{station}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
    name, n = f"{stamp}.sqlite", 1
    while (to / name).exists():  # two copies within a second
        n += 1
        name = f"{stamp}-{n}.sqlite"
    dest = to / name
    partial = to / f".{name}.partial"
    src = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":  # pragma: no cover - a damaged store
                raise StoreBackupError(f"the copy of {store} fails its check: {check}")
            dst.execute("PRAGMA journal_mode=DELETE")
            unsent = _count(dst, "outbox")
            events = _count(dst, "events")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise StoreBackupError(f"cannot back up {store}: {exc}") from None
    finally:
        src.close()
    digest = hashlib.sha256(partial.read_bytes()).hexdigest()
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.rename(partial, dest)
    (to / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    return (
        f"station {station}: store copied to {dest} "
        f"({events} events, {unsent} not yet acknowledged by central)"
    )


def _count(db: sqlite3.Connection, table: str) -> int:
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
