"""Orders as the supervisors' page shows them (A2): counts by state, orders about to
breach and overdue, blocked orders with their reasons, orders shipped twice, search,
and one order's timeline with the station's and central's times (C2).

A multi-parcel order is one row with its parcels. Customer data (C1) is masked here
unless the caller says the reader may see it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, events, orders, shipments, stations, utcnow
from central.watch.deadlines import list_deadlines
from central.watch.exceptions import list_exceptions, mask_name, mask_phone

__all__ = [
    "OrderNotFound",
    "blocked_orders",
    "mask_name",
    "mask_phone",
    "mask_recipient",
    "order_counts",
    "order_timeline",
    "orders_at_risk",
    "recent_orders",
    "search_orders",
    "shipped_twice",
]


class OrderNotFound(LookupError):
    """No such order."""


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def mask_recipient(recipient: Any, *, see_customers: bool) -> dict[str, Any]:
    """The recipient as the reader may see it: in full, or name and phone masked and
    the address cut to its first 6 characters."""
    if not isinstance(recipient, dict):
        return {}
    if see_customers:
        return dict(recipient)
    address = str(recipient.get("address") or "")
    return {
        **{k: v for k, v in recipient.items() if k not in ("name", "phone", "address")},
        "name": mask_name(str(recipient.get("name") or "")),
        "phone": mask_phone(str(recipient.get("phone") or "")),
        "address": address[:6] + ("…" if len(address) > 6 else ""),
        "masked": True,
    }


def order_counts(engine: Engine) -> dict[str, int]:
    """How many orders: ``total``, ``waiting`` (ready, not shipped), ``blocked``,
    ``shipped``, ``about_to_breach``, ``overdue`` and ``shipped_twice``; plus one
    count per order status (``status_ready``, ``status_held``...)."""
    shipped_orders = sa.select(shipments.c.order_no).distinct().subquery()
    with engine.connect().execution_options(**READ_ONLY) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar_one()
        blocked = conn.execute(
            sa.select(sa.func.count()).select_from(orders).where(orders.c.blocked)
        ).scalar_one()
        shipped = conn.execute(sa.select(sa.func.count()).select_from(shipped_orders)).scalar_one()
        by_status: dict[str, int] = dict(
            conn.execute(
                sa.select(orders.c.status, sa.func.count()).group_by(orders.c.status)
            ).all()
        )
        waiting = conn.execute(
            sa.select(sa.func.count())
            .select_from(orders)
            .where(
                orders.c.status == "ready",
                ~orders.c.blocked,
                orders.c.order_no.not_in(sa.select(shipped_orders.c.order_no)),
            )
        ).scalar_one()
        risk: dict[str, int] = dict(
            conn.execute(
                sa.text(
                    "SELECT state, COUNT(DISTINCT order_no) FROM deadlines "
                    "WHERE state IN ('warned', 'breached') GROUP BY state"
                )
            ).all()
        )
    counts = {
        "total": int(total),
        "waiting": int(waiting),
        "blocked": int(blocked),
        "shipped": int(shipped),
        "about_to_breach": int(risk.get("warned", 0)),
        "overdue": int(risk.get("breached", 0)),
        "shipped_twice": len(shipped_twice(engine, limit=10_000)),
    }
    counts.update({f"status_{k}": int(v) for k, v in by_status.items()})
    return counts


def orders_at_risk(
    engine: Engine, *, now: dt.datetime | None = None, limit: int = 200
) -> dict[str, list[dict[str, Any]]]:
    """``about_to_breach`` (warned, soonest first) and ``overdue`` (breached), each
    deadline with ``seconds_left`` (negative when overdue)."""
    now = now or utcnow()
    out: dict[str, list[dict[str, Any]]] = {}
    for key, state in (("about_to_breach", "warned"), ("overdue", "breached")):
        rows = list_deadlines(engine, state=state, limit=limit)
        for row in rows:
            due = dt.datetime.fromisoformat(row["due_at"])
            row["seconds_left"] = int((due - now).total_seconds())
        out[key] = rows
    return out


def blocked_orders(engine: Engine, *, limit: int = 200) -> list[dict[str, Any]]:
    """Orders the bench would refuse now, with the reasons in the packer's words."""
    query = (
        sa.select(
            orders.c.order_no,
            orders.c.shop,
            orders.c.status,
            orders.c.blocked_reasons,
            orders.c.updated_at,
        )
        .where(orders.c.blocked)
        .order_by(orders.c.updated_at.desc())
        .limit(limit)
    )
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
    return [
        {
            **row,
            "blocked_reasons": list(row["blocked_reasons"] or []),
            "updated_at": _iso(row["updated_at"]),
        }
        for row in rows
    ]


def shipped_twice(engine: Engine, *, limit: int = 200) -> list[dict[str, Any]]:
    """Orders packed at two benches, or with more shipments than parcels: ``order_no``,
    ``stations``, ``shipments``, ``parcel_count``."""
    query = (
        sa.select(
            shipments.c.order_no,
            sa.func.count().label("shipments"),
            sa.func.count(sa.distinct(shipments.c.station)).label("benches"),
            sa.func.max(shipments.c.parcel_count).label("parcel_count"),
        )
        .group_by(shipments.c.order_no)
        .having(
            sa.or_(
                sa.func.count(sa.distinct(shipments.c.station)) > 1,
                sa.func.count() > sa.func.max(shipments.c.parcel_count),
            )
        )
        .order_by(shipments.c.order_no)
        .limit(limit)
    )
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
        names = {
            r["order_no"]: sorted(
                conn.execute(
                    sa.select(shipments.c.station)
                    .where(shipments.c.order_no == r["order_no"])
                    .distinct()
                ).scalars()
            )
            for r in rows
        }
    return [
        {
            "order_no": r["order_no"],
            "shipments": int(r["shipments"]),
            "parcel_count": int(r["parcel_count"]),
            "stations": names[r["order_no"]],
        }
        for r in rows
    ]


def _parcels(conn: sa.Connection, order_nos: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not order_nos:
        return {}
    rows = conn.execute(
        sa.select(
            shipments.c.order_no,
            shipments.c.station,
            shipments.c.parcel_no,
            shipments.c.parcel_count,
            shipments.c.tracking_no,
            shipments.c.carrier,
            shipments.c.operator,
            shipments.c.shipped_at,
            shipments.c.shipped_at_corrected,
            shipments.c.recorded_at,
        )
        .where(shipments.c.order_no.in_(order_nos))
        .order_by(shipments.c.order_no, shipments.c.parcel_no, shipments.c.id)
    ).mappings()
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["order_no"], []).append(
            {
                "station": r["station"],
                "parcel_no": r["parcel_no"],
                "parcel_count": r["parcel_count"],
                "tracking_no": r["tracking_no"],
                "carrier": r["carrier"],
                "operator": r["operator"],
                "shipped_at": _iso(r["shipped_at"]),
                "shipped_at_corrected": _iso(r["shipped_at_corrected"]),
                "recorded_at": _iso(r["recorded_at"]),
            }
        )
    return out


def _order_row(row: Any, parcels: list[dict[str, Any]], *, see_customers: bool) -> dict[str, Any]:
    body = row["body"] if isinstance(row["body"], dict) else {}
    return {
        "order_no": row["order_no"],
        "shop": row["shop"],
        "order_type": row["order_type"],
        "status": row["status"],
        "blocked": bool(row["blocked"]),
        "blocked_reasons": list(row["blocked_reasons"] or []),
        "carrier": body.get("carrier"),
        "tracking_no": body.get("tracking_no"),
        "recipient": mask_recipient(body.get("recipient"), see_customers=see_customers),
        "lines": body.get("lines") or [],
        "pack_by": _iso(row["pack_by"]),
        "ship_by": _iso(row["ship_by"]),
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
        "shipped": bool(parcels),
        "parcels": parcels,
    }


_ORDER_COLUMNS = (
    orders.c.order_no,
    orders.c.shop,
    orders.c.order_type,
    orders.c.status,
    orders.c.blocked,
    orders.c.blocked_reasons,
    orders.c.body,
    orders.c.pack_by,
    orders.c.ship_by,
    orders.c.created_at,
    orders.c.updated_at,
    orders.c.order_seq,
)


def search_orders(
    engine: Engine, q: str, *, see_customers: bool, limit: int = 50
) -> list[dict[str, Any]]:
    """Orders whose number or tracking number (the order's, or a parcel's) is ``q``,
    or whose number starts with it; one row per order with its ``parcels``."""
    q = q.strip()
    if not q:
        return []
    by_parcel = sa.select(shipments.c.order_no).where(shipments.c.tracking_no == q)
    query = (
        sa.select(*_ORDER_COLUMNS)
        .where(
            sa.or_(
                orders.c.order_no == q,
                orders.c.order_no.startswith(q, autoescape=True),
                orders.c.order_no.in_(by_parcel),
                orders.c.body["tracking_no"].as_string() == q,
            )
        )
        .order_by(orders.c.order_no)
        .limit(limit)
    )
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
        parcels = _parcels(conn, [r["order_no"] for r in rows])
    return [
        _order_row(r, parcels.get(r["order_no"], []), see_customers=see_customers) for r in rows
    ]


def recent_orders(engine: Engine, *, see_customers: bool, limit: int = 50) -> list[dict[str, Any]]:
    """The orders changed last, one row each with its parcels."""
    query = sa.select(*_ORDER_COLUMNS).order_by(orders.c.order_seq.desc()).limit(limit)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
        parcels = _parcels(conn, [r["order_no"] for r in rows])
    return [
        _order_row(r, parcels.get(r["order_no"], []), see_customers=see_customers) for r in rows
    ]


def order_timeline(
    engine: Engine, order_no: str, *, see_customers: bool, limit: int = 500
) -> dict[str, Any]:
    """One order with its ``timeline``: imported, downlinked (stations whose cursor
    passed it), each station event about it (scanned, verified, printed, each parcel
    shipped) with the station's time (``at_station``) and central's (``at_central``),
    and its exceptions. Raises :class:`OrderNotFound`."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        row = (
            conn.execute(sa.select(*_ORDER_COLUMNS).where(orders.c.order_no == order_no))
            .mappings()
            .first()
        )
        if row is None:
            raise OrderNotFound(f"no order {order_no!r}")
        parcels = _parcels(conn, [order_no])
        about = (
            conn.execute(
                sa.select(
                    events.c.station,
                    events.c.seq,
                    events.c.type,
                    events.c.at_wall,
                    events.c.at_corrected,
                    events.c.received_at,
                )
                .where(events.c.payload["order_no"].as_string() == order_no)
                .order_by(events.c.received_at, events.c.station, events.c.seq)
                .limit(limit)
            )
            .mappings()
            .all()
        )
        downlinked = sorted(
            conn.execute(
                sa.select(stations.c.station).where(stations.c.orders_cursor >= row["order_seq"])
            ).scalars()
        )
    timeline: list[dict[str, Any]] = [
        {
            "what": "imported",
            "station": None,
            "at_station": None,
            "at_central": _iso(row["created_at"]),
        }
    ]
    if row["updated_at"] != row["created_at"]:
        timeline.append(
            {
                "what": "changed",
                "station": None,
                "at_station": None,
                "at_central": _iso(row["updated_at"]),
            }
        )
    for station in downlinked:
        timeline.append(
            {"what": "downlinked", "station": station, "at_station": None, "at_central": None}
        )
    for e in about:
        claimed = dt.datetime.fromtimestamp(e["at_wall"], dt.UTC)
        timeline.append(
            {
                "what": e["type"],
                "station": e["station"],
                "seq": e["seq"],
                "at_station": claimed.isoformat(),
                "at_corrected": _iso(e["at_corrected"]),
                "at_central": _iso(e["received_at"]),
            }
        )
    for x in list_exceptions(engine, order_no=order_no, limit=100):
        timeline.append(
            {
                "what": f"exception #{x['id']} {x['type']} ({x['state']})",
                "station": None,
                "at_station": None,
                "at_central": x["opened_at"],
                "exception_id": x["id"],
            }
        )
    order = _order_row(row, parcels.get(order_no, []), see_customers=see_customers)
    order["deadlines"] = list_deadlines(engine, order_no=order_no)
    order["timeline"] = timeline
    return order
