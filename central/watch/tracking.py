"""Carrier scans and ``logistics_stalled`` (D3): a parcel the carrier never picked up,
or one that stopped moving.

``packline central import-tracking FILE`` stores the carriers' scans (CSV or JSON rows of
``tracking_no, at, status, location``; importing a file again adds nothing). Two timers
per parcel, on its tracking number:

- ``tracking.first_scan``: armed when the bench confirms the parcel, due 24 h after the
  bench's time of it (the marketplaces' fake-shipment rule); the first carrier scan
  disarms it. It opens nothing on a site that never imported a carrier scan: there,
  no scan is no news;
- ``tracking.stalled``: re-armed by every newer scan, due ``stalled_after`` (default
  48 h) after the latest one; a scan whose status says delivered ends it.

Either firing opens a ``logistics_stalled`` exception for the order (one per parcel and
cause); a scan arriving later is written into its history.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import dataclasses
import datetime as dt
import functools
import io
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from central.db import by_keys, shipments
from central.watch.context import Watch, insert_ignoring, when
from central.watch.exceptions import OPEN_STATES, add_note, open_exception
from central.watch.reactions import batch_scope, reacts_to
from central.watch.tables import exceptions, tracking_scans
from central.watch.timers import Timer, arm, arm_many, disarm, timer_kind
from sync.errors import UserError
from sync.events import EventPayload, ShipmentShipped

__all__ = [
    "FIRST_SCAN_WITHIN",
    "ImportResult",
    "TrackingFileError",
    "import_scans",
    "read_tracking_file",
]

log = logging.getLogger(__name__)

FIRST, STALLED = "tracking.first_scan", "tracking.stalled"
#: No carrier scan this long after the bench shipped: a fake shipment, to the platforms.
FIRST_SCAN_WITHIN = dt.timedelta(hours=24)
#: Statuses (lower case, substrings) that end a parcel's journey.
DELIVERED = ("delivered", "signed", "签收")
FIELDS = ("tracking_no", "at", "status", "location")


class TrackingFileError(UserError, ValueError):
    """The file cannot be read at all (not CSV or JSON, no tracking_no column...)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scan:
    """One carrier scan."""

    tracking_no: str
    at: dt.datetime
    status: str
    location: str


@dataclasses.dataclass
class ImportResult:
    """What an import did: scans stored, scans known already, rows refused (with why)."""

    stored: int = 0
    known: int = 0
    refused: list[str] = dataclasses.field(default_factory=list)


def _scan(raw: Any, where: str) -> Scan:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: not an object with {', '.join(FIELDS)}")
    tracking_no = " ".join(str(raw.get("tracking_no") or "").split())
    if not tracking_no or len(tracking_no) > 64:
        raise ValueError(f"{where}: tracking_no missing or longer than 64 characters")
    text = str(raw.get("at") or "").strip()
    try:
        at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{where}: at {text!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise ValueError(f"{where}: at {text!r} has no time zone (add Z or +08:00)")
    status = " ".join(str(raw.get("status") or "").split())
    if not status:
        raise ValueError(f"{where}: status missing")
    location = " ".join(str(raw.get("location") or "").split())
    return Scan(
        tracking_no=tracking_no,
        at=at.astimezone(dt.UTC),
        status=status[:64],
        location=location[:200],
    )


def read_tracking_file(path: Path) -> tuple[list[Scan], list[str]]:
    """The scans of a CSV or JSON file, and the rows refused (each with its reason).

    Raises :class:`TrackingFileError` when the file as a whole cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TrackingFileError(f"cannot read {path}: {exc}") from None
    rows: Iterable[tuple[str, Any]]
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrackingFileError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(data, dict):
            data = data.get("scans")
        if not isinstance(data, list):
            raise TrackingFileError(f'{path}: expected a list of scans (or {{"scans": [...]}})')
        rows = ((f"{path.name} item {i + 1}", raw) for i, raw in enumerate(data))
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "tracking_no" not in reader.fieldnames:
            raise TrackingFileError(
                f"{path}: a CSV file needs a header row with {', '.join(FIELDS)}"
            )
        rows = ((f"{path.name} line {i + 2}", raw) for i, raw in enumerate(reader))
    scans: list[Scan] = []
    refused: list[str] = []
    for where, raw in rows:
        try:
            scans.append(_scan(raw, where))
        except ValueError as exc:
            refused.append(str(exc))
    return scans, refused


def _delivered(status: str) -> bool:
    low = status.lower()
    return any(word in low for word in DELIVERED)


def _order_of(conn: Connection, tracking_no: str) -> RowMapping | None:
    return (
        conn.execute(
            sa.select(shipments.c.order_no, shipments.c.station, shipments.c.shipped_at_corrected)
            .where(shipments.c.tracking_no == tracking_no)
            .order_by(shipments.c.id)
        )
        .mappings()
        .first()
    )


def import_scans(watch: Watch, scans: Iterable[Scan]) -> ImportResult:
    """Store ``scans`` and move each parcel's timers; duplicates are counted, not stored."""
    result = ImportResult()
    latest: dict[str, Scan] = {}
    for scan in scans:
        new_id = insert_ignoring(
            watch.conn,
            tracking_scans,
            {
                "tracking_no": scan.tracking_no,
                "at": scan.at,
                "status": scan.status,
                "location": scan.location,
                "imported_at": watch.now,
            },
            keys=["tracking_no", "at", "status"],
            returning=tracking_scans.c.id,
        )
        if new_id is None:
            result.known += 1
            continue
        result.stored += 1
        held = latest.get(scan.tracking_no)
        if held is None or scan.at > held.at or (scan.at == held.at and _delivered(scan.status)):
            latest[scan.tracking_no] = scan
    for tracking_no, scan in latest.items():
        _moved(watch, tracking_no, scan)
    return result


def _moved(watch: Watch, tracking_no: str, scan: Scan) -> None:
    conn = watch.conn
    disarm(conn, kind=FIRST, subject=tracking_no)
    newest = conn.execute(
        sa.select(sa.func.max(tracking_scans.c.at)).where(
            tracking_scans.c.tracking_no == tracking_no
        )
    ).scalar_one()
    last = conn.execute(
        sa.select(tracking_scans.c.status)
        .where(tracking_scans.c.tracking_no == tracking_no, tracking_scans.c.at == newest)
        .order_by(tracking_scans.c.id.desc())
    ).scalar_one()
    if _delivered(last):
        disarm(conn, kind=STALLED, subject=tracking_no)
    else:
        arm(
            conn,
            kind=STALLED,
            subject=tracking_no,
            due_at=newest + watch.rules.stalled_after,
            data={"last_scan_at": newest.isoformat(), "status": last},
        )
    for row in conn.execute(
        sa.select(exceptions.c.id).where(
            exceptions.c.type == "logistics_stalled",
            exceptions.c.source_key.like(f"logistics_stalled:{tracking_no}:%"),
            exceptions.c.state.in_(OPEN_STATES),
        )
    ):
        add_note(
            watch,
            int(row.id),
            entry="note",
            text=f"carrier scan {scan.status} at {when(scan.at)}"
            + (f" in {scan.location}" if scan.location else ""),
            by="carrier",
        )


#: The first-scan timers a batch's shipments ask for (tracking no → due, data), armed
#: when the batch's reactions end (:func:`_first_scans`); None outside a batch.
_pending: contextvars.ContextVar[dict[str, tuple[dt.datetime, dict[str, Any]]] | None] = (
    contextvars.ContextVar("first_scans", default=None)
)


@reacts_to(ShipmentShipped.TYPE)
def _shipped(
    conn: Connection, row: RowMapping, shipped: ShipmentShipped, at: dt.datetime, now: dt.datetime
) -> None:
    tracking_no = shipped.tracking_no.strip()[:64]
    if not tracking_no:
        return
    due = (
        at + FIRST_SCAN_WITHIN,
        {
            "order_no": shipped.order_no[:64],
            "station": row["station"],
            "shipped_at": at.isoformat(),
            "carrier": shipped.carrier,
        },
    )
    pending = _pending.get()
    if pending is None:
        _arm_first_scans(conn, {tracking_no: due})
    elif tracking_no not in pending or due[0] < pending[tracking_no][0]:
        pending[tracking_no] = due  # the earliest shipment of a parcel counts


@batch_scope
@contextlib.contextmanager
def _first_scans(conn: Connection, payloads: Sequence[EventPayload]) -> Iterator[None]:
    """A batch's first-scan timers, armed set-wise when its reactions are done: a
    query for the parcels already scanned and :func:`arm_many`, instead of three
    statements per shipment (most of a packing batch's ingest cost, bench/ingest.py).
    Nothing else in ingest reads or writes these timers or the carrier scans."""
    pending: dict[str, tuple[dt.datetime, dict[str, Any]]] = {}
    token = _pending.set(pending)
    try:
        yield
    finally:
        _pending.reset(token)
    if pending:
        _arm_first_scans(conn, pending)


def _arm_first_scans(conn: Connection, due: dict[str, tuple[dt.datetime, dict[str, Any]]]) -> None:
    """Arm ``due``'s first-scan timers, but for parcels the carrier scanned already."""
    tracking_nos = sorted(due)
    scanned: set[str] = set()
    for start in range(0, len(tracking_nos), 500):
        scanned.update(
            conn.execute(
                _scanned_query(conn.dialect.name),
                {"tracking_nos": tracking_nos[start : start + 500]},
            ).scalars()
        )
    arm_many(
        conn,
        kind=FIRST,
        due={t: d for t, d in due.items() if t not in scanned},
        keep_earlier=True,
    )


@functools.cache
def _scanned_query(dialect: str) -> sa.Select[Any]:
    """Which of a list of parcels the carrier has scanned."""
    query = sa.select(tracking_scans.c.tracking_no).distinct()
    return by_keys(dialect, query, tracking_scans.c.tracking_no, "tracking_nos")


def _stalled(watch: Watch, tracking_no: str, *, cause: str, text: str) -> None:
    shipment = _order_of(watch.conn, tracking_no)
    order_no = shipment["order_no"] if shipment is not None else None
    open_exception(
        watch,
        type="logistics_stalled",
        order_no=order_no,
        description=text,
        found_by="central",
        source_key=f"logistics_stalled:{tracking_no}:{cause}",
    )


@timer_kind(FIRST, rank=60)
def _no_first_scan(watch: Watch, timer: Timer) -> None:
    fed = watch.conn.execute(sa.select(tracking_scans.c.id).limit(1)).first()
    if fed is None:
        # This site imports no carrier scans (yet): silence is no news, not a stall.
        return
    data = timer.data
    shipped_at = dt.datetime.fromisoformat(str(data["shipped_at"]))
    hours = int(FIRST_SCAN_WITHIN.total_seconds() // 3600)
    _stalled(
        watch,
        timer.subject,
        cause="no_scan",
        text=f"{data.get('order_no')}: parcel {timer.subject} ({data.get('carrier') or 'carrier'}) "
        f"shipped at {data.get('station')} {when(shipped_at)} has no carrier scan within "
        f"{hours} h",
    )


@timer_kind(STALLED, rank=60)
def _no_update(watch: Watch, timer: Timer) -> None:
    data = timer.data
    last = dt.datetime.fromisoformat(str(data["last_scan_at"]))
    hours = int(watch.rules.stalled_after.total_seconds() // 3600)
    shipment = _order_of(watch.conn, timer.subject)
    about = f"{shipment['order_no']}: " if shipment is not None else ""
    _stalled(
        watch,
        timer.subject,
        cause=last.isoformat(),
        text=f"{about}parcel {timer.subject} has no tracking update for {hours} h "
        f"(last: {data.get('status')} at {when(last)})",
    )
