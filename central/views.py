"""Read-side queries shared by the web page, the JSON API and (later) reports.

Rows come back as plain dicts of JSON-friendly values. No customer data: shipments
carry order and tracking numbers only, never the recipient.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import READ_ONLY, events, shipments, stations, utcnow
from central.health import backlog_words

__all__ = [
    "StationReading",
    "change_token",
    "floor_version",
    "list_stations",
    "not_retired",
    "read_shipments",
    "read_stations",
    "recent_shipments",
    "station_health",
    "station_revisions",
]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def station_health(row: Any, *, now: dt.datetime) -> dict[str, Any]:
    """What a station row says about its health, as people read it.

    Ages are the station's own differences (its clock's skew cancels out), carried
    forward by central's clock since the status arrived while the station is online.
    """
    since = 0.0
    if row["online"] and row["status_at"] is not None:
        since = max(0.0, (now - row["status_at"]).total_seconds())
    return _health(row, since=since)


def _health(row: Any, *, since: float) -> dict[str, Any]:
    status = row["last_status"] if isinstance(row["last_status"], dict) else {}
    age = row["backlog_oldest_age_s"]
    if age is not None:
        age += since
    uptime = None
    started, sent = status.get("started_at"), status.get("at_wall")
    if row["online"] and isinstance(started, int | float) and isinstance(sent, int | float):
        uptime = max(0.0, sent - started) + since
    return {
        "backlog_oldest_age_s": age,
        "backlog_text": backlog_words(row["backlog"], age),
        "uptime_s": uptime,
        "disk_free_bytes": status.get("disk_free_bytes"),
        "orders_held": status.get("orders_held"),
        "broker_state": status.get("broker_state"),
        "operator": status.get("operator"),
        "order_in_progress": status.get("order_in_progress"),
        "label_size": status.get("label_size"),
        "last_scan_at": status.get("last_scan_at"),
    }


def not_retired() -> sa.ColumnElement[bool]:
    """Stations not retired, or heard from since they were."""
    return sa.or_(
        stations.c.retired_at.is_(None),
        sa.and_(stations.c.last_seen.is_not(None), stations.c.last_seen > stations.c.retired_at),
    )


def list_stations(engine: Engine, *, site: str | None = None) -> list[dict[str, Any]]:
    """Every station (of ``site`` when given), by name, with its last known health.

    Besides the row's columns: ``backlog_text`` ("backlog 312 events, oldest 47 min"),
    ``backlog_oldest_age_s``, ``uptime_s``, ``disk_free_bytes``, ``orders_held``,
    ``broker_state`` (the station's words), ``operator`` and ``order_in_progress``
    (the bench's packer and order), ``label_size``, ``last_scan_at`` (the station's
    clock, epoch seconds), ``clock_skew_s`` (its wall clock minus
    true time, as central measured it) and ``name_conflict`` (while two benches use
    the name).
    """
    with engine.connect().execution_options(**READ_ONLY) as conn:
        readings = read_stations(conn, site=site)
    now = utcnow()
    return [reading.at(now) for reading in readings]


@dataclass(frozen=True, slots=True)
class StationReading:
    """A station's row as read, ready to show at any moment: :meth:`at` gives
    :func:`list_stations`' item. Reading the row (its JSON, its times) is the costly
    part and is done once per ``revision``; carrying the ages forward is cheap."""

    station: str
    #: The row's ``revision``: the same number, the same row.
    revision: int
    #: The item as the status arrived (nothing carried forward yet). Do not change it.
    item: dict[str, Any]
    #: Central's clock (epoch seconds) when the status arrived, while the ages move
    #: with the clock (online, with a backlog age or an uptime); else None.
    moves_from: float | None
    #: ``backlog_oldest_age_s`` and ``uptime_s`` when the status arrived.
    age: float | None
    uptime: float | None
    #: The item as compact JSON text, a ``str.format`` template with a ``{}`` where
    #: each value that moves goes (their keys in :attr:`json_keys`, in order).
    json_text: str = ""
    json_keys: tuple[str, ...] = ()

    def since(self, now: dt.datetime) -> float:
        """Seconds the ages moved on by ``now`` since the status arrived."""
        if self.moves_from is None:
            return 0.0
        return max(0.0, now.timestamp() - self.moves_from)

    def at(self, now: dt.datetime) -> dict[str, Any]:
        """:func:`list_stations`' item for this station at ``now`` (a new dict)."""
        item = dict(self.item)
        if self.moves_from is None:
            return item
        since = self.since(now)
        if self.age is not None:
            item["backlog_oldest_age_s"] = self.age + since
            item["backlog_text"] = backlog_words(item["backlog"], self.age + since)
        if self.uptime is not None:
            item["uptime_s"] = self.uptime + since
        return item

    def json_at(self, now: float) -> str:
        """:meth:`at` (``now`` in epoch seconds) as compact JSON text, as
        ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` writes it, from
        text encoded once per revision: 500 stations encoded afresh cost more than the
        rest of a request."""
        if self.moves_from is None:
            return self.json_text
        since = now - self.moves_from
        if since < 0.0:
            since = 0.0
        age = (self.age or 0.0) + since
        values = []
        for key in self.json_keys:
            if key == "uptime_s":
                values.append(repr((self.uptime or 0.0) + since))
            elif key == "backlog_oldest_age_s":
                values.append(repr(age))
            else:
                values.append(encode_basestring(backlog_words(self.item["backlog"], age)))
        return self.json_text.format(*values)


_STATION_COLUMNS = (
    stations.c.station,
    stations.c.site,
    stations.c.online,
    stations.c.last_seen,
    stations.c.version,
    stations.c.printer,
    stations.c.printer_detail,
    stations.c.scanner,
    stations.c.labels_left,
    stations.c.backlog,
    stations.c.acked_seq,
    stations.c.orders_cursor,
    stations.c.instance_id,
    stations.c.clock_skew_s,
    stations.c.name_conflict,
    stations.c.status_at,
    stations.c.backlog_oldest_age_s,
    stations.c.last_status,
    stations.c.revision,
)
_NOT_SHOWN = ("last_status", "status_at", "revision")
# Stands in for a value that moves while the item is encoded; random, so that no text
# a station sends can pass for it.
_MARK = f"\x00{secrets.token_hex(8)}:"
_MARKED = re.compile(r'"\\u0000' + _MARK[1:] + r'(\w+)\\u0000"')


def _json_template(item: dict[str, Any], moving: list[str]) -> tuple[str, tuple[str, ...]]:
    if not moving:
        return json.dumps(item, ensure_ascii=False, allow_nan=False, separators=(",", ":")), ()
    marked = dict(item)
    for key in moving:
        marked[key] = f"{_MARK}{key}\x00"
    text = json.dumps(marked, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    pieces = _MARKED.split(text)
    texts = [t.replace("{", "{{").replace("}", "}}") for t in pieces[0::2]]
    return "{}".join(texts), tuple(pieces[1::2])


def read_stations(
    conn: Connection, *, site: str | None = None, names: Collection[str] | None = None
) -> list[StationReading]:
    """The stations (of ``site``; only ``names`` when given) not retired, by name, as
    one :class:`StationReading` each."""
    query = sa.select(*_STATION_COLUMNS).order_by(stations.c.station)
    if site is not None:
        query = query.where(stations.c.site == site)
    if names is not None:
        query = query.where(stations.c.station.in_(list(names)))
    query = query.where(not_retired())
    readings = []
    for row in conn.execute(query).mappings():
        item = {k: v for k, v in row.items() if k not in _NOT_SHOWN}
        health = _health(row, since=0.0)
        item.update(health)
        item.update(online=bool(row["online"]), last_seen=_iso(row["last_seen"]))
        age, uptime = health["backlog_oldest_age_s"], health["uptime_s"]
        moving = []
        if row["online"] and row["status_at"] is not None:
            if age is not None:
                moving += ["backlog_oldest_age_s", "backlog_text"]
            if uptime is not None:
                moving.append("uptime_s")
        template, keys = _json_template(item, moving)
        readings.append(
            StationReading(
                station=row["station"],
                revision=int(row["revision"]),
                item=item,
                moves_from=row["status_at"].timestamp() if moving else None,
                age=age,
                uptime=uptime,
                json_text=template,
                json_keys=keys,
            )
        )
    return readings


def station_revisions(conn: Connection, *, site: str | None = None) -> dict[str, int]:
    """Each station's (of ``site``) ``revision``: which of them changed since a read."""
    query = sa.select(stations.c.station, stations.c.revision)
    if site is not None:
        query = query.where(stations.c.site == site)
    return {row[0]: int(row[1]) for row in conn.execute(query)}


_SHIPMENT_COLUMNS = (
    shipments.c.event_id,
    shipments.c.station,
    shipments.c.order_no,
    shipments.c.tracking_no,
    shipments.c.carrier,
    shipments.c.service,
    shipments.c.parcel_no,
    shipments.c.parcel_count,
    shipments.c.operator,
    shipments.c.print_verified,
    shipments.c.shipped_at,
    shipments.c.shipped_at_corrected,
    shipments.c.skew_s,
    shipments.c.skewed,
    shipments.c.recorded_at,
)


def recent_shipments(
    engine: Engine, *, limit: int = 50, site: str | None = None
) -> list[dict[str, Any]]:
    """The latest shipments, newest first (by the time central recorded them).

    ``shipped_at`` is the station's claim; ``shipped_at_corrected`` the true time as far
    as central knows it, ``skew_s`` their difference and ``skewed`` whether it is more
    than ``skew_tolerance``.
    """
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return read_shipments(conn, limit=limit, site=site)


def read_shipments(conn: Connection, *, limit: int, site: str | None) -> list[dict[str, Any]]:
    """:func:`recent_shipments` on an open connection."""
    query = sa.select(*_SHIPMENT_COLUMNS).order_by(shipments.c.id.desc()).limit(limit)
    if site is not None:
        query = query.join(stations, stations.c.station == shipments.c.station).where(
            stations.c.site == site
        )
    rows = conn.execute(query).mappings().all()
    return [
        {
            **row,
            "print_verified": bool(row["print_verified"]),
            "skewed": bool(row["skewed"]),
            "shipped_at": _iso(row["shipped_at"]),
            "shipped_at_corrected": _iso(row["shipped_at_corrected"]),
            "recorded_at": _iso(row["recorded_at"]),
        }
        for row in rows
    ]


def floor_version(conn: Connection) -> str:
    """A short string that changes whenever a station's row (any column: every UPDATE
    adds one to its ``revision``) or the shipments changed, whichever process wrote.

    Equal strings, the same stations and shipments. Read it before the data it stands
    for (or in the same transaction), so the data is never older than the version.
    """
    shipped = sa.select(sa.func.max(shipments.c.id)).scalar_subquery()
    count, revisions, last_shipment = conn.execute(
        sa.select(sa.func.count(), sa.func.sum(stations.c.revision), shipped).select_from(stations)
    ).one()
    return f"{count}:{revisions or 0}:{last_shipment}"


def change_token(engine: Engine) -> str:
    """A short string that changes whenever what the status page shows may have changed.

    Cheap enough to poll every second, and it works across processes, unlike an
    in-memory signal from the ingest thread.
    """
    with engine.connect().execution_options(**READ_ONLY) as conn:
        last_event = conn.execute(sa.select(sa.func.max(events.c.id))).scalar_one()
        return f"{last_event}:{floor_version(conn)}"
