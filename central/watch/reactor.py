"""The watch's reactions to stored events, after their batch was acknowledged.

Ingest stores a batch — its events, their projections (shipments) and the station's
contiguous seq — in one transaction and acknowledges it (:mod:`central.ingest`). The
watch reacts to those events afterwards (:mod:`central.watch.reactions`: deadlines
met, problems raised, follow-ups armed), station by station in seq order, set-wise
over everything a station sent since: a backlog of many batches costs the watch
about what one batch does, and a station's outbox drains at the speed of storing
alone (bench/ingest.py).

``watch_cursors.reacted_seq`` moves in the same transaction as the reactions'
effects, and never past the station's acknowledged seq: each stored event is reacted
to exactly once, in seq order, whichever process does it and whenever one is killed.
The central service reacts as soon as a batch is acknowledged (its reactor thread),
and every tick first reacts to whatever still waits, so a tick never declares an order
late that a stored shipment has met.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, RowMapping

from central.db import READ_ONLY, events, stations
from central.ingest import PROJECTIONS
from central.timefix import boot_offsets, corrected_time
from central.watch.context import insert_ignoring
from central.watch.deadlines import held_for, note_stations
from central.watch.reactions import REACTIONS, batch, react
from central.watch.tables import watch_cursors
from sync.events import BadEventPayload, EventPayload, decode_payload

__all__ = ["CHUNK", "react_pending", "waiting"]

log = logging.getLogger(__name__)

#: Events of one station reacted to in one transaction, at most.
CHUNK = 2000

_WAITING = (
    sa.select(
        stations.c.station,
        stations.c.acked_seq,
        sa.func.coalesce(watch_cursors.c.reacted_seq, -1).label("reacted"),
    )
    .select_from(stations.outerjoin(watch_cursors, watch_cursors.c.station == stations.c.station))
    .where(stations.c.acked_seq > sa.func.coalesce(watch_cursors.c.reacted_seq, 0))
    .order_by(stations.c.station)
)


def waiting(engine: Engine) -> dict[str, int]:
    """Stations with stored events the watch has not reacted to yet → how many."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return {r.station: r.acked_seq - max(r.reacted, 0) for r in conn.execute(_WAITING)}


#: (database, station, reacted seq) of the passes that failed and were logged: each
#: once.
_failed: set[tuple[str, str, int]] = set()


def react_pending(engine: Engine, *, skip_locked: bool = True) -> int:
    """React to every stored event the watch has not reacted to; how many it did.

    ``skip_locked`` (PostgreSQL): leave a station another process is reacting to
    right now to that process, rather than wait for it. A station whose reactions fail
    (the database, or a fault in a reaction) is logged once and left waiting, its
    events stored, to be tried again at the next pass; the other stations go on.
    Raises only when the database cannot be read at all.
    """
    done = 0
    stuck: set[str] = set()
    while True:
        with engine.connect().execution_options(**READ_ONLY) as conn:
            rows = [r for r in conn.execute(_WAITING) if r.station not in stuck]
        step = 0
        for row in rows:
            try:
                step += _react_station(
                    engine, row.station, new=row.reacted < 0, skip_locked=skip_locked
                )
            except Exception as exc:
                stuck.add(row.station)
                said = (str(engine.url), row.station, int(row.reacted))
                if said in _failed:
                    log.debug("station %s: reactions still fail: %s", row.station, exc)
                    continue
                _failed.add(said)
                log.exception(
                    "could not react to the events of station %s after seq %s (%s: %s); "
                    "they stay stored and are tried again",
                    row.station,
                    max(row.reacted, 0),
                    type(exc).__name__,
                    exc,
                )
        done += step
        if step == 0:
            return done


_CURSOR = sa.select(watch_cursors.c.reacted_seq).where(
    watch_cursors.c.station == sa.bindparam("station")
)
_ACKED = sa.select(stations.c.acked_seq).where(stations.c.station == sa.bindparam("station"))
_EVENTS = (
    sa.select(events)
    .where(
        events.c.station == sa.bindparam("station"),
        events.c.seq > sa.bindparam("after"),
        events.c.seq <= sa.bindparam("upto"),
    )
    .order_by(events.c.seq)
)
_MOVE = (
    watch_cursors.update()
    .where(watch_cursors.c.station == sa.bindparam("moved_station"))
    .values(reacted_seq=sa.bindparam("upto"), updated_at=sa.bindparam("now"))
)


def _react_station(engine: Engine, station: str, *, new: bool, skip_locked: bool) -> int:
    """React to the next :data:`CHUNK` of ``station``'s events, in one transaction."""
    with engine.begin() as conn:
        if new:
            insert_ignoring(
                conn,
                watch_cursors,
                {"station": station, "reacted_seq": 0, "updated_at": dt.datetime.now(dt.UTC)},
                keys=["station"],
                returning=watch_cursors.c.station,
            )
        lock = _CURSOR.with_for_update(skip_locked=skip_locked)
        held = conn.execute(lock, {"station": station}).scalar()
        if held is None:  # another process holds it (or the station is gone)
            return 0
        after = int(held)
        acked = int(conn.execute(_ACKED, {"station": station}).scalar() or 0)
        upto = min(acked, after + CHUNK)
        if upto <= after:
            return 0
        rows = conn.execute(_EVENTS, {"station": station, "after": after, "upto": upto})
        _react(conn, station, list(rows.mappings()))
        now = dt.datetime.now(dt.UTC)
        conn.execute(_MOVE, {"moved_station": station, "upto": upto, "now": now})
        return upto - after


def _decoded(row: RowMapping) -> EventPayload | None:
    """The event's payload as its model; None for a type outside the catalogue or one
    that does not fit it: logged here once, unless ingest logged it already (a type
    with a projection, :data:`central.ingest.PROJECTIONS`)."""
    try:
        return decode_payload(row["type"], row["payload"], version=row["version"])
    except BadEventPayload as exc:
        if row["type"] not in PROJECTIONS:
            log.warning(
                "station %s seq %s: %s; stored, not projected", row["station"], row["seq"], exc
            )
        return None


def _react(conn: Connection, station: str, rows: list[RowMapping]) -> None:
    """The watch's reactions to ``rows`` (``station``'s, in seq order)."""
    decoded = [(row, _decoded(row)) for row in rows]
    noted = {
        order_no[:64]
        for _, payload in decoded
        if isinstance(order_no := getattr(payload, "order_no", None), str) and order_no
    }
    # Every order these events speak of: this bench may have packed it while offline.
    note_stations(conn, order_nos=noted, station=station)
    reacting = [(row, p) for row, p in decoded if p is not None and row["type"] in REACTIONS]
    offsets: dict[str, float | None] = {}
    if reacting:
        boots = {row["boot_id"] for row, _ in reacting}
        offsets = boot_offsets(conn, station=station, boot_ids=boots)
    applied = [p for _, p in decoded if p is not None]
    with held_for(conn, noted if reacting else ()), batch(conn, applied):
        for row, payload in decoded:
            react(conn, row, payload, row["received_at"], at=_at(row, offsets), noted=noted)


def _at(row: Any, offsets: dict[str, float | None]) -> dt.datetime | None:
    """The true time of a reacting event (its boot is among ``offsets``); None for
    the others, whose time no reaction reads."""
    if row["boot_id"] not in offsets:
        return None
    return corrected_time(offsets[row["boot_id"]], at_wall=row["at_wall"], at_mono=row["at_mono"])
