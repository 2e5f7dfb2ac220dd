"""The floor (A2): every station as people read it — online or not since when, who
packs there, printer and scanner state in words with the fix, labels left, backlog,
clock skew and last scan.

An offline station's printer and scanner are "unknown since" it went offline, never
the last state it reported: a printer may have run out of labels since. Each tile gets
a ``level`` — ``offline``, ``fault``, ``check`` or ``ok`` — that the page shows as a
colour, an icon and a word together.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.alerting import clear_condition
from central.db import READ_ONLY, station_history, stations, utcnow
from central.health import backlog_key
from central.views import list_stations

__all__ = [
    "LEVELS",
    "StationNotFound",
    "floor_summary",
    "printer_words",
    "retire_station",
    "scanner_words",
    "skew_words",
    "station_tiles",
]

#: Tile levels, worst first: (level, icon, word).
LEVELS: dict[str, tuple[str, str]] = {
    "offline": ("✖", "OFFLINE"),
    "fault": ("⚠", "FAULT"),
    "check": ("!", "CHECK"),
    "ok": ("✔", "OK"),
}

# Printer state (drivers.printers.base.PrinterState values) → (words, the fix, fault?).
_PRINTER: dict[str, tuple[str, str, bool]] = {
    "ready": ("Ready", "", False),
    "busy": ("Printing", "", False),
    "no media": ("Out of labels", "load a new {roll} roll", True),
    "cover open": ("Cover open", "close the printer's cover", True),
    "wrong media": ("Wrong labels loaded", "load {roll} labels", True),
    "offline": ("Printer not answering", "check its power and cable", True),
    "error": ("Printer error", "switch the printer off and on", True),
}
_SCANNER: dict[str, tuple[str, str, bool]] = {
    "ready": ("Ready", "", False),
    "ok": ("Ready", "", False),
    "opening": ("Connecting", "", False),
    "gone": ("Scanner unplugged", "plug it back in", True),
    "closed": ("Scanner closed", "restart the station", True),
}


def _roll(label_size: Any) -> str:
    if label_size in (None, ""):
        return "label"
    text = str(label_size)
    return f"{text} mm" if text.isdigit() else text


def printer_words(state: str, detail: str = "", label_size: Any = None) -> dict[str, Any]:
    """``{"words", "fix", "fault"}`` for a printer state: ``no media`` →
    ``Out of labels`` / ``load a new 62 mm roll``."""
    words, fix, fault = _PRINTER.get(state, (state.capitalize() or "Unknown", "", False))
    if state == "unknown":
        words = "Unknown"
    if state == "error" and detail:
        words = f"Printer error: {detail}"
    return {"words": words, "fix": fix.format(roll=_roll(label_size)), "fault": fault}


def scanner_words(state: str) -> dict[str, Any]:
    """``{"words", "fix", "fault"}`` for a scanner state: ``gone`` → ``Scanner
    unplugged`` / ``plug it back in``."""
    words, fix, fault = _SCANNER.get(state, (state.capitalize() or "Unknown", "", False))
    if state == "unknown":
        words = "Unknown"
    return {"words": words, "fix": fix, "fault": fault}


def skew_words(skew: float | None) -> str:
    """A station clock's skew in words: ``in step``, ``3 min fast``, ``40 s slow``."""
    if skew is None:
        return "not measured yet"
    if abs(skew) < 2:
        return "in step"
    s = abs(skew)
    size = f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"
    return f"{size} {'fast' if skew > 0 else 'slow'}"


def _online_since(engine: Engine) -> dict[str, dt.datetime]:
    """When each station last went online or offline (its history's ``online`` rows)."""
    query = (
        sa.select(station_history.c.station, sa.func.max(station_history.c.at))
        .where(station_history.c.field == "online")
        .group_by(station_history.c.station)
    )
    with engine.connect().execution_options(**READ_ONLY) as conn:
        return {row[0]: row[1] for row in conn.execute(query)}


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def station_tiles(
    engine: Engine,
    *,
    site: str | None = None,
    labels_low: int = 50,
    backlog_alert_after: float = 15 * 60.0,
    skew_tolerance: float = 60.0,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """One tile per station of ``site``, worst first (offline, fault, check, ok), then
    by name; each is :func:`central.views.list_stations`'s row plus ``level``,
    ``since``, ``packer``, ``printer_words``/``printer_fix``, ``scanner_words``/
    ``scanner_fix``, ``labels_low``, ``last_scan_at`` (true time), ``problems``."""
    now = now or utcnow()
    rows = list_stations(engine, site=site)
    since = _online_since(engine) if rows else {}
    tiles = []
    for row in rows:
        online = bool(row["online"])
        went = since.get(row["station"])
        tile = dict(row)
        tile["since"] = _iso(went) if went is not None else row["last_seen"]
        tile["packer"] = row["operator"] if online else None
        tile["order_in_progress"] = row["order_in_progress"] if online else None
        problems: list[str] = []
        if online:
            printer = printer_words(row["printer"], row["printer_detail"], row["label_size"])
            scanner = scanner_words(row["scanner"])
        else:
            # Not known while the station cannot say: never the last "ready".
            printer = {"words": "Unknown", "fix": "", "fault": False}
            scanner = {"words": "Unknown", "fix": "", "fault": False}
        tile["printer_state"] = row["printer"] if online else "unknown"
        tile["scanner_state"] = row["scanner"] if online else "unknown"
        tile["printer_words"], tile["printer_fix"] = printer["words"], printer["fix"]
        tile["scanner_words"], tile["scanner_fix"] = scanner["words"], scanner["fix"]
        labels = row["labels_left"]
        tile["labels_low"] = labels is not None and labels < labels_low
        skew = row["clock_skew_s"]
        tile["clock_skewed"] = skew is not None and abs(skew) > skew_tolerance
        tile["clock_words"] = skew_words(skew)
        scan = row["last_scan_at"]
        if isinstance(scan, int | float):
            true_time = scan - (skew or 0.0)
            tile["last_scan_at"] = dt.datetime.fromtimestamp(true_time, dt.UTC).isoformat()
        age = row["backlog_oldest_age_s"]
        if printer["fault"]:
            problems.append(printer["words"] + (f" — {printer['fix']}" if printer["fix"] else ""))
        if scanner["fault"]:
            problems.append(scanner["words"] + (f" — {scanner['fix']}" if scanner["fix"] else ""))
        if row.get("name_conflict"):
            problems.append("Two benches use this name")
        notes: list[str] = []
        if online and tile["labels_low"]:
            notes.append(f"Labels low — {labels} left, load a new roll soon")
        if online and tile["clock_skewed"]:
            notes.append(f"Clock {tile['clock_words']}")
        if online and row["backlog"] and age is not None and age > backlog_alert_after:
            notes.append("Records not reaching central")
        tile["notes"] = notes
        if not online:
            level = "offline"
        elif problems:
            level = "fault"
        elif notes:
            level = "check"
        else:
            level = "ok"
        tile["level"] = level
        tile["level_icon"], tile["level_word"] = LEVELS[level]
        tile["problems"] = problems
        tiles.append(tile)
    order = list(LEVELS)
    tiles.sort(key=lambda t: (order.index(t["level"]), t["station"]))
    return tiles


def floor_summary(tiles: list[dict[str, Any]]) -> dict[str, int]:
    """How many stations there are at each level, online and in all."""
    counts = {level: 0 for level in LEVELS}
    for tile in tiles:
        counts[tile["level"]] += 1
    counts["total"] = len(tiles)
    counts["online"] = len(tiles) - counts["offline"]
    return counts


class StationNotFound(LookupError):
    """No such station (of the site served)."""


def retire_station(
    engine: Engine, station: str, *, site: str, now: dt.datetime | None = None
) -> None:
    """Take a station that no longer exists off the floor and out of the offline
    alerts; its records stay. A station heard from again comes back by itself."""
    now = now or utcnow()
    with engine.begin() as conn:
        done = conn.execute(
            stations.update()
            .where(stations.c.station == station, stations.c.site == site)
            .values(retired_at=now)
        ).rowcount
        if not done:
            raise StationNotFound(f"no station {station!r} at site {site}")
        for key in (f"station_offline:{station}", f"labels_low:{station}", backlog_key(station)):
            clear_condition(conn, key=key, now=now)
