"""Messages central could not take: kept, counted, and never in the way.

A message that is not JSON, not the shape of its topic's message, of a wire version
central does not speak, too big (over ``max_message_bytes``), with a value out of its
range (a NaN time, a negative count), addressed to another station than its topic's,
or sent by a second bench using a name another bench owns, is set aside here with its
topic, the reason (one word), the detail (in words), its size and a bounded sample of
its bytes. Ingest goes straight on with the next message: one bad message never blocks
a station's stream or stops ingest.

The same message coming again (a station resends what was not acknowledged) counts as
a repeat of its row, so a bench stuck on one bad batch does not fill the table.
``packline central dead-letters`` lists them; :func:`dead_letter_counts` gives the
counts by reason for metrics.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import READ_ONLY, dead_letters

__all__ = [
    "REASONS",
    "SAMPLE_BYTES",
    "dead_letter_counts",
    "list_dead_letters",
    "record_dead_letter",
]

#: Every reason a message is set aside, with what it means.
REASONS: dict[str, str] = {
    "malformed": "not JSON, or not the shape of its topic's message",
    "oversized": "bigger than max_message_bytes",
    "wrong_version": "a wire version central does not speak",
    "invalid_value": "a value out of its range: not a finite number, a negative count, ...",
    "misaddressed": "names another station or site than its topic",
    "name_conflict": "sent by a second bench using a name another bench owns",
    "integrity": "an event at a seq central already holds under another event id",
}

#: How much of a message is kept, in bytes.
SAMPLE_BYTES = 2048


# Control characters are shown as escapes: a sample is read in a terminal, and
# PostgreSQL text cannot hold NUL.
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F] if chr(c) not in "\t\n"}


def _sample(payload: bytes) -> str:
    text = payload[:SAMPLE_BYTES].decode("utf-8", errors="backslashreplace")
    return text.translate(_CONTROLS)


def record_dead_letter(
    conn: Connection,
    *,
    topic: str,
    reason: str,
    detail: str,
    payload: bytes,
    now: dt.datetime,
    station: str | None = None,
    instance_id: str | None = None,
    key: str | None = None,
) -> tuple[int, int]:
    """Keep one message central could not take; returns its row id and how many
    times it has now come (1 for a new one).

    ``key`` says which messages are "the same" (default: same topic, reason and
    bytes); a message with the key of a row already kept adds to its ``repeats``.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown dead-letter reason {reason!r}")
    if key is None:
        digest = hashlib.sha256(topic.encode() + b"\0" + reason.encode() + b"\0" + payload)
        key = f"{reason}:{digest.hexdigest()[:40]}"
    key = key[:128]
    held = conn.execute(
        sa.select(dead_letters.c.id, dead_letters.c.repeats)
        .where(dead_letters.c.key == key)
        .limit(1)
    ).first()
    if held is not None:
        conn.execute(
            dead_letters.update()
            .where(dead_letters.c.id == held.id)
            .values(repeats=dead_letters.c.repeats + 1, last_at=now)
        )
        return int(held.id), int(held.repeats) + 1
    inserted = conn.execute(
        dead_letters.insert().values(
            first_at=now,
            last_at=now,
            topic=topic[:255],
            station=station[:64] if station else None,
            instance_id=instance_id[:64] if instance_id else None,
            reason=reason,
            detail=detail[:500],
            size=len(payload),
            sample=_sample(payload),
            repeats=1,
            key=key,
        )
    ).inserted_primary_key
    assert inserted is not None
    return int(inserted[0]), 1


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


def list_dead_letters(
    engine: Engine, *, limit: int = 100, station: str | None = None
) -> list[dict[str, Any]]:
    """The latest dead letters (by when last seen), newest first, as plain dicts."""
    query = (
        sa.select(
            dead_letters.c.id,
            dead_letters.c.first_at,
            dead_letters.c.last_at,
            dead_letters.c.repeats,
            dead_letters.c.topic,
            dead_letters.c.station,
            dead_letters.c.instance_id,
            dead_letters.c.reason,
            dead_letters.c.detail,
            dead_letters.c.size,
            dead_letters.c.sample,
        )
        .order_by(dead_letters.c.last_at.desc(), dead_letters.c.id.desc())
        .limit(limit)
    )
    if station is not None:
        query = query.where(dead_letters.c.station == station)
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
    return [
        {**row, "first_at": _iso(row["first_at"]), "last_at": _iso(row["last_at"])} for row in rows
    ]


def dead_letter_counts(engine: Engine) -> dict[str, int]:
    """How many messages were set aside, by reason (repeats included); every reason
    is present, zero when none."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(
            sa.select(dead_letters.c.reason, sa.func.sum(dead_letters.c.repeats)).group_by(
                dead_letters.c.reason
            )
        ).all()
    counts = dict.fromkeys(REASONS, 0)
    counts.update({reason: int(total) for reason, total in rows})
    return counts
