"""The equipment ledger (A4): every printer and scanner the stations report.

Nothing here asks a person to type what a station already says. A device is known from
the station's status (``printer_model``, ``printer_serial`` — the printer's address or
device when it has no readable serial — and ``scanner_device``, each change kept in
``station_history``) and from the ``device.state`` events the bench records (which may
name the model and serial too). For each device the ledger gives:

- model, serial or device id, station, first and last seen (central's clock);
- whether it is the one the station uses now, its state and, for a printer, the
  labels left against the ``labels_low`` threshold (label stock);
- its faults over time: every ``device.state`` event with a state that stops the
  bench (``no media``, ``cover open``, ``offline``, ``gone``...), at the bench's time
  corrected for clock skew, with how long it lasted (until the next good state);
- the maintenance entries added by hand (``equipment_notes``, append-only): repair,
  cleaning, replacement, install date (an ``installed`` entry's time is the device's
  install date; first seen otherwise).

Read side only: the ledger is computed from the stored facts on every call.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import READ_ONLY, UTCDateTime, events, metadata, station_history, stations
from sync.errors import UserError

__all__ = [
    "DEVICES",
    "GOOD_STATES",
    "NOTE_KINDS",
    "EquipmentRefused",
    "add_note",
    "equipment_ledger",
    "equipment_notes",
]

#: The kinds of device a station reports.
DEVICES = ("printer", "scanner")
#: States in which a device does not stop the bench.
GOOD_STATES = frozenset({"ready", "busy", "unknown", "opening", "closed", ""})
#: What a hand-written entry records.
NOTE_KINDS = ("maintenance", "repair", "cleaning", "replaced", "installed", "retired", "note")

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# Migration 0007_equipment; append-only (triggers refuse UPDATE and DELETE).
equipment_notes = sa.Table(
    "equipment_notes",
    metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("station", sa.String(64), nullable=False),
    sa.Column("device", sa.String(16), nullable=False),
    # The device's id in the ledger (serial, address or model) when the entry was made.
    sa.Column("device_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    # When it was done (given by the person, default when recorded).
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Index("ix_equipment_notes_station_device", "station", "device"),
)

#: How many faults of each device are listed (all are counted).
FAULTS_SHOWN = 50


class EquipmentRefused(UserError, ValueError):
    """A maintenance entry that cannot be recorded; ``str()`` says why."""


@dataclasses.dataclass
class _Device:
    station: str
    device: str
    model: str
    serial: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def device_id(self) -> str:
        return self.serial or self.model or f"{self.station} {self.device}"


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _identity_fields(device: str) -> tuple[str, str]:
    return ("printer_model", "printer_serial") if device == "printer" else ("", "scanner_device")


class _Ledger:
    def __init__(self) -> None:
        self.devices: dict[tuple[str, str, str, str], _Device] = {}
        # (station, device) → [(since, key)], in time order
        self.timeline: dict[tuple[str, str], list[tuple[dt.datetime, tuple[str, ...]]]] = (
            defaultdict(list)
        )

    def seen(self, station: str, device: str, model: str, serial: str, at: dt.datetime) -> Any:
        key = (station, device, model, serial)
        held = self.devices.get(key)
        if held is None:
            held = self.devices[key] = _Device(station, device, model, serial, at, at)
        held.first_seen = min(held.first_seen, at)
        held.last_seen = max(held.last_seen, at)
        return key

    def current_at(self, station: str, device: str, at: dt.datetime) -> Any:
        found = None
        for since, key in self.timeline.get((station, device), []):
            if since <= at:
                found = key
            else:
                break
        if found is None and self.timeline.get((station, device)):
            found = self.timeline[(station, device)][0][1]  # before the first report
        return found


def _identities(conn: Connection, ledger: _Ledger, now: dt.datetime) -> dict[str, Any]:
    """Walk each station's history of identity fields; the station rows by name."""
    rows = conn.execute(
        sa.select(
            stations.c.station,
            stations.c.site,
            stations.c.online,
            stations.c.printer,
            stations.c.printer_detail,
            stations.c.scanner,
            stations.c.labels_left,
            stations.c.last_status,
            stations.c.last_seen,
            stations.c.created_at,
        ).order_by(stations.c.station)
    ).mappings()
    by_station = {r["station"]: dict(r) for r in rows}
    fields = ["printer_model", "printer_serial", "scanner_device"]
    history = conn.execute(
        sa.select(
            station_history.c.station,
            station_history.c.at,
            station_history.c.field,
            station_history.c.new_value,
        )
        .where(station_history.c.field.in_(fields))
        .order_by(station_history.c.station, station_history.c.at, station_history.c.id)
    ).all()
    pending: list[tuple[str, dt.datetime]] = []
    for h in history:
        if pending and pending[-1] == (h.station, _utc(h.at)):
            continue
        pending.append((h.station, _utc(h.at)))
    # Apply each instant's changes together (model and serial change in one status).
    values: dict[str, dict[str, str]] = defaultdict(dict)
    by_instant: dict[tuple[str, dt.datetime], dict[str, str]] = defaultdict(dict)
    for h in history:
        by_instant[(h.station, _utc(h.at))][h.field] = h.new_value or ""
    for station, at in pending:
        values[station].update(by_instant[(station, at)])
        for device in DEVICES:
            model_field, serial_field = _identity_fields(device)
            model = values[station].get(model_field, "") if model_field else ""
            serial = values[station].get(serial_field, "")
            if not model and not serial:
                continue
            key = ledger.seen(station, device, model, serial, at)
            line = ledger.timeline[(station, device)]
            if not line or line[-1][1] != key:
                line.append((at, key))
    for station, row in by_station.items():
        last = row["last_status"] if isinstance(row["last_status"], dict) else {}
        seen = _utc(row["last_seen"]) if row["last_seen"] is not None else now
        for device in DEVICES:
            model_field, serial_field = _identity_fields(device)
            model = str(last.get(model_field) or "") if model_field else ""
            serial = str(last.get(serial_field) or "")
            if model or serial:
                key = ledger.seen(station, device, model, serial, seen)
                line = ledger.timeline[(station, device)]
                if not line:
                    line.append((seen, key))
    return by_station


def _faults(conn: Connection, ledger: _Ledger) -> None:
    rows = conn.execute(
        sa.select(
            events.c.station,
            events.c.seq,
            events.c.at_wall,
            events.c.at_corrected,
            events.c.payload,
        )
        .where(events.c.type == "device.state")
        .order_by(events.c.station, events.c.seq)
    ).all()
    open_fault: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        p = r.payload if isinstance(r.payload, dict) else {}
        device = str(p.get("device") or "")
        if device not in DEVICES:
            continue
        at = (
            _utc(r.at_corrected)
            if r.at_corrected is not None
            else dt.datetime.fromtimestamp(r.at_wall, dt.UTC)
        )
        state = str(p.get("state") or "")
        model, serial = str(p.get("model") or ""), str(p.get("serial") or "")
        if model or serial:
            key = ledger.seen(r.station, device, model, serial, at)
        else:
            key = ledger.current_at(r.station, device, at) or ledger.seen(
                r.station, device, "", "", at
            )
        held = open_fault.pop((r.station, device), None)
        if held is not None:
            held["until"] = _iso(at)
            held["lasted_s"] = (at - dt.datetime.fromisoformat(held["at"])).total_seconds()
        if state not in GOOD_STATES:
            fault = {
                "at": _iso(at),
                "state": state,
                "detail": str(p.get("detail") or ""),
                "until": None,
                "lasted_s": None,
            }
            ledger.devices[key].faults.append(fault)
            open_fault[(r.station, device)] = fault


def add_note(
    engine: Engine,
    *,
    station: str,
    device: str,
    text: str,
    by: str,
    kind: str = "maintenance",
    at: dt.datetime | None = None,
    now: dt.datetime,
    device_id: str | None = None,
) -> dict[str, Any]:
    """Record a maintenance entry for ``station``'s ``device`` (the one it uses now,
    or ``device_id``); the entry as stored. Raises :class:`EquipmentRefused`."""
    if device not in DEVICES:
        raise EquipmentRefused(f"device must be printer or scanner, not {device!r}")
    if kind not in NOTE_KINDS:
        raise EquipmentRefused(f"kind must be one of {', '.join(NOTE_KINDS)}, not {kind!r}")
    words = " ".join(str(text).split())
    if not words:
        raise EquipmentRefused("the entry needs a text (what was done)")
    who = " ".join(str(by).split())[:64]
    if not who:
        raise EquipmentRefused("the entry needs who did it (by)")
    when = at or now
    if when.tzinfo is None:
        raise EquipmentRefused("the time of the entry needs its zone")
    if when > now + dt.timedelta(minutes=5):
        raise EquipmentRefused("the time of the entry is in the future")
    ledger = equipment_ledger(engine, now=now)
    mine = [d for d in ledger if d["station"] == station and d["device"] == device]
    if not mine and not device_id:
        known = sorted({d["station"] for d in ledger})
        raise EquipmentRefused(
            f"no {device} known at station {station!r}"
            + (f" (stations with devices: {', '.join(known)})" if known else "")
        )
    if device_id is None:
        in_use = [d for d in mine if d["in_use"]] or mine
        device_id = in_use[0]["device_id"]
    elif mine and device_id not in {d["device_id"] for d in mine}:
        raise EquipmentRefused(
            f"station {station} has no {device} {device_id!r} "
            f"(it has {', '.join(d['device_id'] for d in mine)})"
        )
    values = {
        "station": station,
        "device": device,
        "device_id": device_id[:255],
        "kind": kind,
        "at": when,
        "recorded_at": now,
        "by": who,
        "text": words[:2000],
    }
    with engine.begin() as conn:
        new_id = conn.execute(
            equipment_notes.insert().values(values).returning(equipment_notes.c.id)
        ).scalar_one()
    return {**values, "id": int(new_id), "at": _iso(when), "recorded_at": _iso(now)}


def equipment_ledger(
    engine: Engine,
    *,
    now: dt.datetime,
    labels_low: int = 50,
    station: str | None = None,
) -> list[dict[str, Any]]:
    """Every printer and scanner known, by station, the one in use first.

    Each: ``station``, ``site``, ``device`` (printer/scanner), ``model``, ``serial``,
    ``device_id``, ``first_seen``, ``last_seen``, ``installed_at``, ``in_use``,
    ``state`` (the station's word; ``unknown`` while it is offline), ``detail``,
    ``labels_left``, ``labels_low`` and ``labels_low_now`` (printers in use),
    ``fault_count``, ``faults`` (newest first, at most 50), ``notes`` (newest first).
    """
    ledger = _Ledger()
    with engine.connect().execution_options(**READ_ONLY) as conn:
        by_station = _identities(conn, ledger, now)
        _faults(conn, ledger)
        note_rows = conn.execute(
            sa.select(equipment_notes).order_by(equipment_notes.c.at, equipment_notes.c.id)
        ).mappings()
        notes: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for n in note_rows:
            notes[(n["station"], n["device"], n["device_id"])].append(
                {
                    "id": int(n["id"]),
                    "kind": n["kind"],
                    "at": _iso(n["at"]),
                    "recorded_at": _iso(n["recorded_at"]),
                    "by": n["by"],
                    "text": n["text"],
                }
            )
    out = []
    for key, d in ledger.devices.items():
        if station is not None and d.station != station:
            continue
        row = by_station.get(d.station, {})
        line = ledger.timeline.get((d.station, d.device), [])
        in_use = bool(line) and line[-1][1] == key
        online = bool(row.get("online"))
        state = str(row.get(d.device) or "unknown") if in_use else "removed"
        if in_use and not online:
            state = "unknown"
        mine = notes.get((d.station, d.device, d.device_id), [])
        installed = [n["at"] for n in mine if n["kind"] == "installed"]
        labels = row.get("labels_left") if in_use and d.device == "printer" else None
        out.append(
            {
                "station": d.station,
                "site": row.get("site"),
                "device": d.device,
                "model": d.model,
                "serial": d.serial,
                "device_id": d.device_id,
                "first_seen": _iso(d.first_seen),
                "last_seen": _iso(d.last_seen),
                "installed_at": installed[-1] if installed else _iso(d.first_seen),
                "in_use": in_use,
                "online": online if in_use else None,
                "state": state,
                "detail": str(row.get("printer_detail") or "")
                if in_use and d.device == "printer"
                else "",
                "labels_left": labels,
                "labels_low": labels_low if d.device == "printer" else None,
                "labels_low_now": labels is not None and labels < labels_low,
                "fault_count": len(d.faults),
                "faults": list(reversed(d.faults))[:FAULTS_SHOWN],
                "notes": list(reversed(mine)),
            }
        )
    out.sort(key=lambda e: (e["station"], DEVICES.index(e["device"]), not e["in_use"],
                            e["first_seen"]))  # fmt: skip
    return out
