"""Alerts: written to an outbox with the change that causes them, then published.

An alert is one JSON message to people (A1) on ``packline/v1/{site}/alerts/{to}/
{severity}`` (QoS 1, not retained), where ``to`` is the audience of its escalation
level (the department, its head, management). :func:`queue_alert` writes it to the
``alerts`` table inside the caller's transaction, so an alert exists exactly when the
change that caused it was committed. :func:`publish_pending` sends what is not sent
yet and marks it sent once the broker took it; a crash between the two sends it again
later with the same ``alert_id`` (so a subscriber can tell a repeat of a message from
a new alert), never loses it. Publishers lease the rows they send (``claimed_until``),
so two processes never send one alert side by side.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, utcnow
from central.watch.context import Watch, when
from central.watch.tables import alerts
from sync import topics
from sync.session import Delivery, MqttSession

__all__ = [
    "KINDS",
    "LEASE",
    "Alert",
    "AlertKind",
    "publish_pending",
    "queue_alert",
    "recent_alerts",
    "unpublished_count",
]

log = logging.getLogger(__name__)

#: How long a publisher holds the alerts it is sending: longer than a batch takes (the
#: broker's answers are awaited ``wait`` s); what a publisher that died held goes out
#: again this long after.
LEASE = dt.timedelta(seconds=30)

AlertKind = Literal["warning", "opened", "repeat", "escalated", "resolved"]
#: Every kind of alert, in the order a condition's life goes through them.
KINDS: tuple[str, ...] = ("warning", "opened", "repeat", "escalated", "resolved")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Alert:
    """One alert as it is published (``payload()``) and listed."""

    alert_id: str
    dedup_key: str
    kind: str
    level: int
    level_name: str
    dept: str
    to: str
    severity: str
    order_no: str | None
    exception_id: int | None
    due_at: dt.datetime | None
    at: dt.datetime
    message: str

    def payload(self) -> dict[str, Any]:
        """The message's JSON fields (docs/alerts.md)."""
        return {
            "v": 1,
            "alert_id": self.alert_id,
            "dedup_key": self.dedup_key,
            "kind": self.kind,
            "level": self.level,
            "level_name": self.level_name,
            "dept": self.dept,
            "to": self.to,
            "severity": self.severity,
            "order_no": self.order_no,
            "exception_id": self.exception_id,
            "due_at": _iso(self.due_at),
            "at": _iso(self.at),
            "message": self.message,
        }

    def topic(self, site: str) -> str:
        """Where it is published for ``site``."""
        return topics.alerts(site, self.to, self.severity)

    def line(self) -> str:
        """One line for a terminal: time, kind, audience, subject, message."""
        about = " ".join(
            part
            for part in (
                f"#{self.exception_id}" if self.exception_id is not None else "",
                self.order_no or "",
            )
            if part
        )
        return (
            f"{when(self.at)}  {self.kind:<9} L{self.level} {self.to}/{self.severity}"
            f"{'  ' + about if about else ''}  {self.message}"
        )


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat() if moment is not None else None


def queue_alert(
    watch: Watch,
    *,
    dedup_key: str,
    kind: AlertKind,
    level: int,
    level_name: str,
    dept: str,
    to: str,
    severity: str,
    message: str,
    due_at: dt.datetime | None = None,
    order_no: str | None = None,
    exception_id: int | None = None,
) -> Alert:
    """Write an alert to the outbox in ``watch``'s transaction; it is sent after commit."""
    alert = Alert(
        alert_id=str(uuid.uuid4()),
        dedup_key=dedup_key[:200],
        kind=kind,
        level=level,
        level_name=level_name,
        dept=dept,
        to=to,
        severity=severity,
        order_no=order_no,
        exception_id=exception_id,
        due_at=due_at,
        at=watch.now,
        message=message,
    )
    watch.conn.execute(
        alerts.insert().values(
            alert_id=alert.alert_id,
            dedup_key=alert.dedup_key,
            kind=kind,
            level=level,
            dept=dept,
            to=to,
            severity=severity,
            order_no=order_no,
            exception_id=exception_id,
            due_at=due_at,
            at=watch.now,
            message=message,
            payload=alert.payload(),
            created_at=utcnow(),
        )
    )
    watch.fired.append(alert)
    log.info("alert %s: %s", kind, message)
    return alert


def _from_row(row: sa.RowMapping) -> Alert:
    payload = row["payload"]
    return Alert(
        alert_id=row["alert_id"],
        dedup_key=row["dedup_key"],
        kind=row["kind"],
        level=row["level"],
        level_name=str(payload.get("level_name", "")),
        dept=row["dept"],
        to=row["to"],
        severity=row["severity"],
        order_no=row["order_no"],
        exception_id=row["exception_id"],
        due_at=row["due_at"],
        at=row["at"],
        message=row["message"],
    )


def _claim_pending(engine: Engine, *, limit: int, lease: dt.timedelta) -> list[sa.RowMapping]:
    now = utcnow()
    free = sa.and_(
        alerts.c.published_at.is_(None),
        sa.or_(alerts.c.claimed_until.is_(None), alerts.c.claimed_until < now),
    )
    with engine.begin() as conn:
        ids = (
            sa.select(alerts.c.id)
            .where(free)
            .order_by(alerts.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        # The outer condition is checked again on the locked row (PostgreSQL), so a row
        # another publisher leased in between is not taken twice.
        rows = (
            conn.execute(
                alerts.update()
                .where(alerts.c.id.in_(ids.scalar_subquery()), free)
                .values(claimed_until=now + lease)
                .returning(
                    alerts.c.id,
                    alerts.c.alert_id,
                    alerts.c.to,
                    alerts.c.severity,
                    alerts.c.payload,
                )
            )
            .mappings()
            .all()
        )
    return sorted(rows, key=lambda r: r["id"])


def publish_pending(
    engine: Engine,
    *,
    site: str,
    session: MqttSession,
    wait: float = 10.0,
    batch: int = 200,
    lease: dt.timedelta = LEASE,
) -> int:
    """Publish every alert not yet published, oldest first; how many the broker took.

    Each is marked published only once the broker acknowledged it (QoS 1). Alerts the
    broker did not take within ``wait`` seconds are released for the next call.
    """
    sent = 0
    while True:
        rows = _claim_pending(engine, limit=batch, lease=lease)
        if not rows:
            return sent
        deliveries: list[tuple[int, Delivery]] = []
        for row in rows:
            body = json.dumps(row["payload"], ensure_ascii=False, separators=(",", ":"))
            topic = topics.alerts(site, row["to"], row["severity"])
            deliveries.append((row["id"], session.publish(topic, body.encode("utf-8"), qos=1)))
        done = [i for i, d in deliveries if d.wait(wait)]
        missed = [i for i, d in deliveries if d.delivered is not True]
        with engine.begin() as conn:
            if done:
                conn.execute(
                    alerts.update().where(alerts.c.id.in_(done)).values(published_at=utcnow())
                )
            if missed:
                conn.execute(
                    alerts.update().where(alerts.c.id.in_(missed)).values(claimed_until=None)
                )
        sent += len(done)
        if missed:
            log.warning(
                "%d alerts not taken by the broker yet; they stay in the outbox", len(missed)
            )
            return sent


def unpublished_count(engine: Engine) -> int:
    """How many alerts wait in the outbox."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(alerts.c.published_at.is_(None))
            ).scalar_one()
        )


def recent_alerts(
    engine: Engine,
    *,
    limit: int = 100,
    dedup_key: str | None = None,
    exception_id: int | None = None,
    order_no: str | None = None,
) -> list[dict[str, Any]]:
    """The newest alerts first, as their JSON plus ``published_at``."""
    query = sa.select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if dedup_key is not None:
        query = query.where(alerts.c.dedup_key == dedup_key)
    if exception_id is not None:
        query = query.where(alerts.c.exception_id == exception_id)
    if order_no is not None:
        query = query.where(alerts.c.order_no == order_no)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
    return [{**_from_row(r).payload(), "published_at": _iso(r["published_at"])} for r in rows]
