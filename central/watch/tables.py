"""The watch's tables (migration ``0003_watch_engine``).

- ``timers``: every timer of every kind in one place. A timer is due when
  ``next_fire_at <= now``; the tick finds due timers with one range query on the
  partial index over ``next_fire_at`` (finished timers hold NULL and are not in it)
  and claims each with ``UPDATE … WHERE next_fire_at = <seen> RETURNING``.
- ``deadlines``: the pack-by and ship-by deadline of each order, its state and when
  (by the bench's clock) it was met.
- ``escalations``: one alarm that repeats and climbs until it is acknowledged or
  ended: an exception's, a station condition's. At most one active per ``dedup_key``.
- ``exceptions`` and ``exception_history`` (append-only: triggers refuse UPDATE and
  DELETE on both SQLite and PostgreSQL).
- ``alerts``: the alert outbox, written in the transaction of the change that caused
  the alert and published from there.
- ``watch_cursors`` (migration ``0011_watch_cursors``): per station, the seq up to
  which the watch has reacted to its events (:mod:`central.watch.reactor`).
"""

from __future__ import annotations

import sqlalchemy as sa

from central.db import UTCDateTime, metadata

__all__ = [
    "alerts",
    "deadlines",
    "escalations",
    "exception_history",
    "exceptions",
    "ticket_history",
    "tickets",
    "timers",
    "tracking_scans",
    "watch_cursors",
]

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

timers = sa.Table(
    "timers",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    # Which handler fires it (central.watch.timers.KINDS) and what about.
    sa.Column("kind", sa.String(48), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    # The true due time of the step it waits for (kept after it fired).
    sa.Column("due_at", UTCDateTime, nullable=False),
    # Equal to due_at while armed (or later, after a failed run); NULL once done.
    sa.Column("next_fire_at", UTCDateTime, nullable=True),
    # Among timers due at one instant, lower ranks fire first.
    sa.Column("rank", sa.SmallInteger, nullable=False, default=50),
    sa.Column("fired", sa.Integer, nullable=False, default=0),
    sa.Column("last_fired_at", UTCDateTime, nullable=True),
    sa.Column("data", sa.JSON, nullable=False, default=dict),
    sa.UniqueConstraint("kind", "subject"),
    sa.Index(
        "ix_timers_next_fire_at",
        "next_fire_at",
        sqlite_where=sa.text("next_fire_at IS NOT NULL"),
        postgresql_where=sa.text("next_fire_at IS NOT NULL"),
    ),
)

deadlines = sa.Table(
    "deadlines",
    metadata,
    sa.Column("order_no", sa.String(64), primary_key=True),
    # ``pack`` or ``ship``.
    sa.Column("which", sa.String(8), primary_key=True),
    sa.Column("due_at", UTCDateTime, nullable=False, index=True),
    sa.Column("warn_at", UTCDateTime, nullable=False),
    # pending → warned → breached; met; stopped (cancelled orders).
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("warned_at", UTCDateTime, nullable=True),
    sa.Column("breached_at", UTCDateTime, nullable=True),
    # When it was met by the bench's clock (corrected when central knows the skew),
    # where, by which event, and when central heard of it.
    sa.Column("met_at", UTCDateTime, nullable=True),
    sa.Column("met_station", sa.String(64), nullable=True),
    sa.Column("met_event_id", sa.String(64), nullable=True),
    sa.Column("heard_at", UTCDateTime, nullable=True),
    # The bench that last recorded anything about the order (for "bench-02 offline").
    sa.Column("station", sa.String(64), nullable=True),
    sa.Column("exception_id", sa.BigInteger, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    # Stable for one condition (``exception:12``, ``station_offline:bench-02``).
    sa.Column("dedup_key", sa.String(200), nullable=False, index=True),
    # What it is about: ``exception:12``, ``condition:station_offline:bench-02``.
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("dept", sa.String(48), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    # 1-based index into policy.levels.
    sa.Column("level", sa.Integer, nullable=False),
    # The policy it opened under, as it was then.
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("order_no", sa.String(64), nullable=True),
    sa.Column("exception_id", sa.BigInteger, nullable=True),
    sa.Column("due_at", UTCDateTime, nullable=True),
    # Acknowledging stops the repeats; for a condition it also stops the climb.
    sa.Column("settle_on_ack", sa.Boolean, nullable=False, default=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("acked_at", UTCDateTime, nullable=True),
    sa.Column("acked_by", sa.String(64), nullable=True),
    sa.Column("settled_at", UTCDateTime, nullable=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Index(
        "uq_escalations_active_dedup_key",
        "dedup_key",
        unique=True,
        sqlite_where=sa.text("ended_at IS NULL"),
        postgresql_where=sa.text("ended_at IS NULL"),
    ),
)

exceptions = sa.Table(
    "exceptions",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("type", sa.String(32), nullable=False, index=True),
    sa.Column("order_no", sa.String(64), nullable=True, index=True),
    sa.Column("customer", sa.String(128), nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("found_at", UTCDateTime, nullable=False),
    sa.Column("found_by", sa.String(64), nullable=False),
    sa.Column("cause_class", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("dept", sa.String(48), nullable=False),
    # open → acknowledged → plan_posted → resolved → closed
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("level", sa.Integer, nullable=False, default=1),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    # The missed deadline, for a shipping delay.
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("plan_due_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(64), nullable=True),
    sa.Column("plan", sa.Text, nullable=True),
    sa.Column("plan_at", UTCDateTime, nullable=True),
    sa.Column("plan_by", sa.String(64), nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("resolved_by", sa.String(64), nullable=True),
    sa.Column("report", sa.JSON, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("closed_by", sa.String(64), nullable=True),
    # What raised it (``shipping_delay:PDD-1``): one exception per key, so a second
    # breach of one order is a history entry, not a second exception.
    sa.Column("source_key", sa.String(200), nullable=True, unique=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

exception_history = sa.Table(
    "exception_history",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column(
        "exception_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("exceptions.id"),
        nullable=False,
        index=True,
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    # opened, acknowledged, plan, resolved, closed, escalated, breach, reopened, note...
    sa.Column("entry", sa.String(24), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.JSON, nullable=True),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("alert_id", sa.String(36), nullable=False, unique=True),
    sa.Column("dedup_key", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("dept", sa.String(48), nullable=False),
    # The audience's level of the topic: alerts/{to}/{severity}.
    sa.Column("to", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("order_no", sa.String(64), nullable=True, index=True),
    sa.Column("exception_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    # The JSON published, fixed when the alert is written: a republish after a crash
    # sends the same bytes, alert_id included.
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # A publisher's lease (real time), so two processes never send one alert at once.
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("published_at", UTCDateTime, nullable=True),
    sa.Index(
        "ix_alerts_unpublished",
        "id",
        sqlite_where=sa.text("published_at IS NULL"),
        postgresql_where=sa.text("published_at IS NULL"),
    ),
)

# After-sales tickets and carrier scans (migration ``0009_tickets``).

tickets = sa.Table(
    "tickets",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    # complaint, return, exchange, reissue
    sa.Column("category", sa.String(16), nullable=False, index=True),
    sa.Column("order_no", sa.String(64), nullable=True, index=True),
    sa.Column("customer", sa.String(128), nullable=False, default=""),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("dept", sa.String(48), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    # open → responded → closed
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("level", sa.Integer, nullable=False, default=1),
    sa.Column("policy", sa.JSON, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("opened_by", sa.String(64), nullable=False),
    # The first response is due by then (D7: 10 minutes).
    sa.Column("respond_by", UTCDateTime, nullable=False),
    sa.Column("responded_at", UTCDateTime, nullable=True),
    sa.Column("responded_by", sa.String(64), nullable=True),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(64), nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("closed_by", sa.String(64), nullable=True),
    # The customer's confirmation, in words (needed to close).
    sa.Column("confirmation", sa.Text, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

ticket_history = sa.Table(
    "ticket_history",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column(
        "ticket_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("tickets.id"),
        nullable=False,
        index=True,
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    # opened, acknowledged, response, follow_up, return_inspected, escalated, closed
    sa.Column("entry", sa.String(24), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False, default=""),
    sa.Column("data", sa.JSON, nullable=True),
)

tracking_scans = sa.Table(
    "tracking_scans",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("tracking_no", sa.String(64), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(64), nullable=False),
    sa.Column("location", sa.String(200), nullable=False, default=""),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("tracking_no", "at", "status", name="uq_tracking_scans_scan"),
)

watch_cursors = sa.Table(
    "watch_cursors",
    metadata,
    sa.Column("station", sa.String(64), primary_key=True),
    # The station's events up to here (in seq order) have been reacted to.
    sa.Column("reacted_seq", sa.BigInteger, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
