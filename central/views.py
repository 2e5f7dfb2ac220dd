"""Read-side queries shared by the web page, the JSON API and (later) reports.

Rows come back as plain dicts of JSON-friendly values. No customer data: shipments
carry order and tracking numbers only, never the recipient.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, events, shipments, stations

__all__ = ["change_token", "list_stations", "recent_shipments"]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def list_stations(engine: Engine, *, site: str | None = None) -> list[dict[str, Any]]:
    """Every station (of ``site`` when given), by name, with its last known health."""
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
    ).order_by(stations.c.station)
    if site is not None:
        query = query.where(stations.c.site == site)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
    return [
        {**row, "online": bool(row["online"]), "last_seen": _iso(row["last_seen"])} for row in rows
    ]


def recent_shipments(
    engine: Engine, *, limit: int = 50, site: str | None = None
) -> list[dict[str, Any]]:
    """The latest shipments, newest first (by the time central recorded them)."""
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
            "shipped_at": _iso(row["shipped_at"]),
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
