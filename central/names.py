"""Two benches with one name: which station store owns a station name.

Each station store has an instance id, made once with the store and carried in every
status and batch. The first instance central hears under a name owns it
(``stations.instance_id``). Another instance under the same name — a copied
``station.toml``, a cloned SD card with a fresh store — is refused: its batches go to
the dead letters and stay in its outbox (central does not acknowledge them), its
status does not overwrite the owner's health, an alert names both, and both benches
are told, in the acks central sends them, "another bench uses the name bench-03".

The conflict ends when the second instance has not been heard for
:data:`CONFLICT_QUIET` seconds (it was renamed or switched off). A bench that is
really replaced, with a new store, needs a name of its own: its records start again
at seq 1, which the old name's records already hold.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from central.alerting import clear_condition, raise_condition
from central.db import station_instances, stations

__all__ = [
    "CONFLICT_QUIET",
    "NameClaim",
    "claim_name",
    "conflict_key",
    "expire_conflicts",
    "owner_words",
]

#: A second instance not heard for this long (seconds) no longer counts as a conflict.
CONFLICT_QUIET = 600.0


def conflict_key(station: str) -> str:
    """The dedup key of the alert for two benches using ``station``'s name."""
    return f"station-name:{station}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class NameClaim:
    """What :func:`claim_name` decided for one message."""

    #: This message's instance may speak for the station.
    accepted: bool
    #: The instance that owns the name (None: no instance ever named itself).
    owner: str | None
    #: The words for the bench that sent the message, while there is a conflict.
    conflict: str | None


def _short(instance: str) -> str:
    return instance[:8]


def _words_for(station: str, *, owner: str, instance: str, others: list[str]) -> str | None:
    if instance != owner:
        return (
            f"another bench uses the name {station}: central takes the records of the "
            f"bench that had it first (instance {_short(owner)}) and keeps this bench's "
            "records here until one of the two is given another name"
        )
    if others:
        names = ", ".join(_short(o) for o in others)
        return (
            f"another bench uses the name {station} (instance {names}): central refuses its "
            "records until one of the two is given another name"
        )
    return None


def _live_others(conn: Connection, *, station: str, owner: str, now: dt.datetime) -> list[str]:
    since = now - dt.timedelta(seconds=CONFLICT_QUIET)
    rows = conn.execute(_LIVE_OTHERS, {"station": station, "owner": owner, "since": since})
    return [r.instance_id for r in rows]


_LIVE_OTHERS = (
    sa.select(station_instances.c.instance_id)
    .where(
        station_instances.c.station == sa.bindparam("station"),
        station_instances.c.instance_id != sa.bindparam("owner"),
        station_instances.c.last_seen > sa.bindparam("since"),
    )
    .order_by(station_instances.c.first_seen)
)


@functools.cache
def _seen_upsert(dialect_name: str) -> Any:
    """The upsert of a station instance's sighting, built once per dialect."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(station_instances)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(station_instances)  # type: ignore[assignment]
    return stmt.on_conflict_do_update(
        index_elements=["station", "instance_id"],
        set_={
            "last_seen": stmt.excluded.last_seen,
            "refused": station_instances.c.refused + stmt.excluded.refused,
        },
    )


def _seen(
    conn: Connection, *, station: str, instance: str, now: dt.datetime, refused: bool
) -> None:
    conn.execute(
        _seen_upsert(conn.dialect.name),
        {
            "station": station,
            "instance_id": instance,
            "first_seen": now,
            "last_seen": now,
            "refused": 1 if refused else 0,
        },
    )


_CLAIM = sa.select(stations.c.instance_id, stations.c.name_conflict).where(
    stations.c.station == sa.bindparam("station")
)


def claim_name(
    conn: Connection,
    *,
    station: str,
    instance_id: str | None,
    now: dt.datetime,
    held: tuple[str | None, str | None] | None = None,
) -> NameClaim:
    """Record that ``instance_id`` spoke as ``station`` and decide whether it may.

    The caller holds the station's row (it exists and is locked for this transaction).
    A message without an instance id (a station older than instance ids) is accepted.
    ``held``: the station row's ``instance_id`` and ``name_conflict`` when the caller
    read them with its lock (a query less per batch). Raises or clears the two-benches
    alert as the conflict starts or ends.
    """
    if instance_id is None:
        # A station older than instance ids: it can be neither told apart nor told.
        return NameClaim(accepted=True, owner=None, conflict=None)
    owner, was = held if held is not None else conn.execute(_CLAIM, {"station": station}).one()
    if owner is None:
        owner = instance_id
        conn.execute(
            stations.update().where(stations.c.station == station).values(instance_id=owner)
        )
    accepted = instance_id == owner
    _seen(conn, station=station, instance=instance_id, now=now, refused=not accepted)
    others = _live_others(conn, station=station, owner=owner, now=now)
    words = _words_for(station, owner=owner, instance=instance_id, others=others)
    _note_conflict(conn, station=station, owner=owner, others=others, was=was, now=now)
    return NameClaim(accepted=accepted, owner=owner, conflict=words)


def _note_conflict(
    conn: Connection,
    *,
    station: str,
    owner: str,
    others: list[str],
    was: str | None,
    now: dt.datetime,
) -> None:
    summary = (
        f"two benches use the name {station}: instance {_short(owner)} (had it first) and "
        + ", ".join(_short(o) for o in others)
        + "; central refuses the second's records until one of them is given another name"
        if others
        else None
    )
    if summary == was:
        return
    conn.execute(
        stations.update().where(stations.c.station == station).values(name_conflict=summary)
    )
    if summary is not None:
        raise_condition(
            conn,
            key=conflict_key(station),
            dept="operations",
            severity="major",
            message=summary,
            now=now,
        )
    else:
        clear_condition(conn, key=conflict_key(station), now=now)


def expire_conflicts(conn: Connection, *, site: str, now: dt.datetime) -> list[str]:
    """End the conflicts whose second bench has gone quiet; returns those stations."""
    rows = conn.execute(
        sa.select(stations.c.station, stations.c.instance_id).where(
            stations.c.site == site, stations.c.name_conflict.is_not(None)
        )
    ).all()
    ended: list[str] = []
    for row in rows:
        if row.instance_id is None:
            continue
        if _live_others(conn, station=row.station, owner=row.instance_id, now=now):
            continue
        _note_conflict(conn, station=row.station, owner=row.instance_id, others=[], was="", now=now)
        ended.append(row.station)
    return ended


def owner_words(conn: Connection, *, station: str, now: dt.datetime) -> str | None:
    """The words for the bench that owns ``station``'s name, while another uses it."""
    owner = conn.execute(
        sa.select(stations.c.instance_id).where(stations.c.station == station)
    ).scalar_one_or_none()
    if owner is None:
        return None
    others = _live_others(conn, station=station, owner=owner, now=now)
    return _words_for(station, owner=owner, instance=owner, others=others)
