"""Read-side queries shared by the web page, the JSON API and (later) reports.

Rows come back as plain dicts of JSON-friendly values. No customer data: shipments
carry order and tracking numbers only, never the recipient.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, events, shipments, stations, utcnow
from central.health import backlog_words

__all__ = [
    "change_token",
    "list_stations",
    "not_retired",
    "recent_shipments",
    "station_health",
]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def station_health(row: Any, *, now: dt.datetime) -> dict[str, Any]:
    """What a station row says about its health, as people read it.

    Ages are the station's own differences (its clock's skew cancels out), carried
    forward by central's clock since the status arrived while the station is online.
    """
    status = row["last_status"] if isinstance(row["last_status"], dict) else {}
    since = 0.0
    if row["online"] and row["status_at"] is not None:
        since = max(0.0, (now - row["status_at"]).total_seconds())
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
    query = sa.select(
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
    ).order_by(stations.c.station)
    if site is not None:
        query = query.where(stations.c.site == site)
    query = query.where(not_retired())
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
    now = utcnow()
    shown = []
    for row in rows:
        item = {k: v for k, v in row.items() if k not in ("last_status", "status_at")}
        item.update(station_health(row, now=now))
        item.update(online=bool(row["online"]), last_seen=_iso(row["last_seen"]))
        shown.append(item)
    return shown


def recent_shipments(
    engine: Engine, *, limit: int = 50, site: str | None = None
) -> list[dict[str, Any]]:
    """The latest shipments, newest first (by the time central recorded them).

    ``shipped_at`` is the station's claim; ``shipped_at_corrected`` the true time as far
    as central knows it, ``skew_s`` their difference and ``skewed`` whether it is more
    than ``skew_tolerance``.
    """
    query = (
        sa.select(
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
        .order_by(shipments.c.id.desc())
        .limit(limit)
    )
    if site is not None:
        query = query.join(stations, stations.c.station == shipments.c.station).where(
            stations.c.site == site
        )
    with engine.connect().execution_options(**READ_ONLY) as conn:
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


def change_token(engine: Engine) -> str:
    """A short string that changes whenever what the status page shows may have changed.

    Cheap enough to poll every second, and it works across processes, unlike an
    in-memory signal from the ingest thread.
    """
    # last_seen moves on every batch and every online status (which carries the
    # printer, scanner and backlog); an offline status moves only the online count.
    online = sa.func.sum(sa.case((stations.c.online, 1), else_=0))
    with engine.connect().execution_options(**READ_ONLY) as conn:
        last_event = conn.execute(sa.select(sa.func.max(events.c.id))).scalar_one()
        count, online_count, last_seen = conn.execute(
            sa.select(sa.func.count(), online, sa.func.max(stations.c.last_seen))
        ).one()
    return f"{last_event}:{count}:{online_count}:{last_seen}"
