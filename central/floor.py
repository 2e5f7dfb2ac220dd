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
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.alerting import clear_condition
from central.db import READ_ONLY, station_history, stations, utcnow
from central.health import backlog_key, backlog_words
from central.views import (
    StationReading,
    floor_version,
    read_shipments,
    read_stations,
    station_revisions,
)

__all__ = [
    "LEVELS",
    "FloorModel",
    "FloorState",
    "StationNotFound",
    "TileRules",
    "floor_summary",
    "printer_words",
    "retire_station",
    "scanner_words",
    "skew_words",
    "sort_tiles",
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


def _online_since(conn: Connection, names: Collection[str] | None = None) -> dict[str, dt.datetime]:
    """When each station (of ``names``) last went online or offline (its history's
    ``online`` rows)."""
    query = (
        sa.select(station_history.c.station, sa.func.max(station_history.c.at))
        .where(station_history.c.field == "online")
        .group_by(station_history.c.station)
    )
    if names is not None:
        query = query.where(station_history.c.station.in_(list(names)))
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
    with engine.connect().execution_options(**READ_ONLY) as conn:
        readings = read_stations(conn, site=site)
        since = _online_since(conn) if readings else {}
    now = now or utcnow()
    rules = TileRules(
        labels_low=labels_low,
        backlog_alert_after=backlog_alert_after,
        skew_tolerance=skew_tolerance,
    )
    return sort_tiles([rules.tile(r.at(now), since.get(r.station)) for r in readings])


@dataclass(frozen=True, slots=True)
class TileRules:
    """The thresholds a tile is judged by (the site's settings)."""

    labels_low: int = 50
    backlog_alert_after: float = 15 * 60.0
    skew_tolerance: float = 60.0

    def tile(self, row: dict[str, Any], went: dt.datetime | None) -> dict[str, Any]:
        """The tile of one :func:`central.views.list_stations` row; ``went``: when the
        station last went online or offline, if known."""
        online = bool(row["online"])
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
        tile["labels_low"] = labels is not None and labels < self.labels_low
        skew = row["clock_skew_s"]
        tile["clock_skewed"] = skew is not None and abs(skew) > self.skew_tolerance
        tile["clock_words"] = skew_words(skew)
        scan = row["last_scan_at"]
        if isinstance(scan, int | float):
            true_time = scan - (skew or 0.0)
            tile["last_scan_at"] = dt.datetime.fromtimestamp(true_time, dt.UTC).isoformat()
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
        if online and self.late(row["backlog"], row["backlog_oldest_age_s"]):
            notes.append(_LATE)
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
        return tile

    def aged(self, tile: dict[str, Any], reading: StationReading, now: dt.datetime) -> None:
        """Move ``tile`` (:meth:`tile` of ``reading``'s item as it arrived) on to ``now``:
        what :meth:`tile` of ``reading.at(now)`` would give, without building it again."""
        since = reading.since(now)
        if reading.uptime is not None:
            tile["uptime_s"] = reading.uptime + since
        if reading.age is None:
            return
        age = reading.age + since
        tile["backlog_oldest_age_s"] = age
        tile["backlog_text"] = backlog_words(tile["backlog"], age)
        # The note comes last, and the age only grows: once late, late at every later
        # moment (then the tile as it arrived has it already).
        if self.late(tile["backlog"], age) and _LATE not in tile["notes"]:
            tile["notes"] = [*tile["notes"], _LATE]
            if tile["level"] == "ok":
                tile["level"] = "check"
                tile["level_icon"], tile["level_word"] = LEVELS["check"]

    def late(self, backlog: int, age: float | None) -> bool:
        """Whether a backlog this old means records are not reaching central."""
        return bool(backlog) and age is not None and age > self.backlog_alert_after


def sort_tiles(tiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``tiles`` worst first (offline, fault, check, ok), then by name."""
    tiles.sort(key=lambda t: (_LEVEL_ORDER[t["level"]], t["station"]))
    return tiles


_LEVEL_ORDER = {level: i for i, level in enumerate(LEVELS)}
_LATE = "Records not reaching central"


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


@dataclass(frozen=True, slots=True)
class _Station:
    reading: StationReading
    #: Its tile as the status arrived (:meth:`TileRules.aged` moves it on).
    tile: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FloorState:
    """The floor as read at ``version`` (:func:`central.views.floor_version`): what
    every request shows until the next change. The ages on it move with the clock:
    ask for a moment."""

    version: str
    rules: TileRules
    #: The stations of the site, not retired, by name.
    stations: tuple[_Station, ...]
    #: The latest shipments of the site, newest first (:func:`central.views.recent_shipments`).
    shipments: tuple[dict[str, Any], ...]
    #: Each station's row revision as read.
    revisions: dict[str, int]

    def station_list(self, now: dt.datetime) -> list[dict[str, Any]]:
        """:func:`central.views.list_stations` at ``now``."""
        return [s.reading.at(now) for s in self.stations]

    def station_list_json(self, now: dt.datetime) -> str:
        """:meth:`station_list` as compact JSON text (``json.dumps(...,
        ensure_ascii=False, separators=(",", ":"))``), mostly encoded once per change."""
        moment = now.timestamp()
        return "[" + ",".join([s.reading.json_at(moment) for s in self.stations]) + "]"

    def tiles(self, now: dt.datetime) -> list[dict[str, Any]]:
        """:func:`station_tiles` at ``now``."""
        tiles = []
        for s in self.stations:
            tile = dict(s.tile)
            if s.reading.moves_from is not None:
                self.rules.aged(tile, s.reading, now)
            tiles.append(tile)
        return sort_tiles(tiles)

    def clock_words(self, now: dt.datetime) -> tuple[tuple[str, str, bool], ...]:
        """What the clock changes on the page at ``now``: ``(station, backlog_text,
        late)`` of every station whose backlog ages while it is online. The tiles as
        people read them are the same as long as this and :attr:`version` are."""
        words = []
        late = self.rules.late
        for s in self.stations:
            reading = s.reading
            if reading.moves_from is not None and reading.age is not None:
                backlog = reading.item["backlog"]
                age = reading.age + reading.since(now)
                words.append((reading.station, backlog_words(backlog, age), late(backlog, age)))
        return tuple(words)

    def revision(self, station: str) -> int | None:
        """The row revision ``station`` was read at (None when not on the floor)."""
        return self.revisions.get(station)


class FloorModel:
    """The floor of one site, read once per change and shared by every request.

    Each :meth:`current` reads :func:`central.views.floor_version` from the database
    (one small query), so a change committed by any process or connection shows on the
    next request; only then are the stations read again, and only those whose row
    changed. Thread-safe: requests that find the floor changed at the same moment read
    it once.
    """

    #: More changed stations than this and all are read again in one query.
    REREAD_ALL = 100

    def __init__(
        self,
        engine: Engine,
        *,
        site: str | None,
        rules: TileRules,
        shipments_shown: int = 25,
    ) -> None:
        self.engine = engine
        self.site = site
        self.rules = rules
        self.shipments_shown = shipments_shown
        self._lock = threading.Lock()
        self._state: FloorState | None = None
        # Every station's (of the site) row revision at the last read, retired or not.
        self._seen: dict[str, int] = {}
        #: How many times the stations were read (all of them, or the changed ones).
        self.reads = 0

    def current(self) -> FloorState:
        """The floor as the database has it now."""
        with self.engine.connect().execution_options(**READ_ONLY) as conn:
            version = floor_version(conn)
        state = self._state
        if state is not None and state.version == version:
            return state
        with self._lock, self.engine.connect().execution_options(**READ_ONLY) as conn:
            # Another request may have read it meanwhile; and what is read below must
            # be the version it is kept under (one transaction).
            version = floor_version(conn)
            state = self._state
            if state is None or state.version != version:
                state = self._read(conn, version, state)
                self._state = state
            return state

    def _read(self, conn: Connection, version: str, old: FloorState | None) -> FloorState:
        self.reads += 1
        revisions = station_revisions(conn, site=self.site)
        changed = [name for name, rev in revisions.items() if self._seen.get(name) != rev]
        kept = {} if old is None else {s.reading.station: s for s in old.stations}
        if old is None or len(changed) > self.REREAD_ALL:
            readings = read_stations(conn, site=self.site)
            went = _online_since(conn) if readings else {}
            kept = {}
        else:
            readings = read_stations(conn, site=self.site, names=changed) if changed else []
            went = _online_since(conn, changed) if changed else {}
            for name in changed:
                kept.pop(name, None)
        for name in list(kept):
            if name not in revisions:  # moved to another site
                del kept[name]
        for reading in readings:
            tile = self.rules.tile(reading.item, went.get(reading.station))
            kept[reading.station] = _Station(reading=reading, tile=tile)
        self._seen = revisions
        shown = tuple(kept[name] for name in sorted(kept))
        return FloorState(
            version=version,
            rules=self.rules,
            stations=shown,
            revisions={s.reading.station: s.reading.revision for s in shown},
            shipments=tuple(read_shipments(conn, limit=self.shipments_shown, site=self.site)),
        )
