"""Backups of central's database (rule C3): full snapshots, incrementals, restore.

A backup folder holds one sub-folder per backup, numbered in the order they were
taken (``0001-full-20261128T020000Z``, ``0002-incremental-…``), each with a
``manifest.json`` that lists every file it holds with its SHA-256. A folder is written
under a hidden name and renamed when complete, so a backup cut short is never read.

- A **full** backup is a consistent snapshot: SQLite's online backup API copies the
  file page by page inside one read transaction; PostgreSQL's ``pg_dump`` dumps the
  database from a snapshot exported by a transaction of ours (custom format).
- An **incremental** backup holds what changed since the backup before it, read in
  one snapshot (SQLite read transaction, PostgreSQL ``REPEATABLE READ``):

  * ``append`` tables — rows are only ever inserted, under an increasing ``id``
    (``exception_history``, ``station_history``): the rows above the previous
    backup's watermark.
  * ``events`` and ``shipments`` — inserted under an increasing ``id`` and corrected
    only when central learns a station boot's clock (``central.timefix`` rewrites
    every event of that boot, and its shipments, in the transaction that moves the
    boot's offset): the rows above the watermark plus every row of each boot whose
    offset moved since the previous backup.
  * every other table with a primary key (orders, deadlines, timers, exceptions,
    alerts, stations, and tables added later): rows are compared with a digest of
    each row kept by the previous backup; new and changed rows are written, and the
    keys of deleted rows.
  * a table without a primary key is copied whole.

  The watermark is taken before the snapshot under a ``SHARE`` lock (PostgreSQL), which
  waits for writers in flight, so no row below it can still appear later; SQLite has
  one writer at a time and needs none.
- :func:`restore` verifies every checksum of the last full backup and each incremental
  after it, refuses a database that is not empty, loads the full backup and applies
  the incrementals in order, then checks each table's row count against the last
  manifest.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import gzip
import hashlib
import itertools
import json
import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import _create_engine, error_reason
from sync.errors import UserError

__all__ = [
    "APPEND_TABLES",
    "BackupError",
    "BackupResult",
    "RestoreResult",
    "backup",
    "backup_sqlite_file",
    "restore",
]

FORMAT = 1
MANIFEST = "manifest.json"
APPEND_TABLES = ("exception_history", "station_history")
BOOT_TABLES = ("events", "shipments")
_NAME = re.compile(r"^(\d{4,})-(full|incremental)-(\d{8}T\d{6}Z)$")
_CHUNK = 2000


class BackupError(UserError, RuntimeError):
    """A backup or restore cannot go on; ``str()`` says why, on one line."""


@dataclass
class BackupResult:
    """What :func:`backup` wrote."""

    name: str
    kind: str
    path: Path
    rows: int
    tables: int
    bytes: int
    note: str = ""

    def summary(self) -> str:
        """One line for the operator."""
        what = "snapshot" if self.kind == "full" else f"{self.rows} rows changed"
        note = f" ({self.note})" if self.note else ""
        return (
            f"{self.kind} backup {self.name}: {what} in {self.tables} tables, "
            f"{_size(self.bytes)}, in {self.path.parent}{note}"
        )


@dataclass
class RestoreResult:
    """What :func:`restore` applied."""

    backups: list[str] = field(default_factory=list)
    tables: int = 0
    rows: int = 0

    def summary(self, url: str) -> str:
        """One line for the operator."""
        incr = len(self.backups) - 1
        return (
            f"restored {self.backups[0]}"
            + (f" and {incr} incremental backup{'s' if incr != 1 else ''}" if incr else "")
            + f" into {url}: {self.tables} tables, {self.rows} rows, checksums and counts verified"
        )


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _shown(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


# --------------------------------------------------------------------------- values


def _codec(col: sa.Column[Any]) -> str:
    try:
        py = col.type.python_type
    except NotImplementedError:
        return "raw"
    if isinstance(col.type, sa.JSON):
        return "raw"
    if py is dt.datetime:
        return "datetime"
    if py is dt.date:
        return "date"
    if py is dt.time:
        return "time"
    if py is decimal.Decimal:
        return "decimal"
    if py is bytes:
        return "bytes"
    return "raw"


def _encode(value: Any, codec: str) -> Any:
    if value is None or codec == "raw":
        return value
    if codec in ("datetime", "date", "time"):
        return value.isoformat()
    if codec == "decimal":
        return str(value)
    if codec == "bytes":
        return base64.b64encode(bytes(value)).decode()
    return value  # pragma: no cover


def _decode(value: Any, codec: str) -> Any:
    if value is None or codec == "raw":
        return value
    if codec == "datetime":
        return dt.datetime.fromisoformat(value)
    if codec == "date":
        return dt.date.fromisoformat(value)
    if codec == "time":
        return dt.time.fromisoformat(value)
    if codec == "decimal":
        return decimal.Decimal(value)
    if codec == "bytes":
        return base64.b64decode(value)
    return value  # pragma: no cover


class _Table:
    """A reflected table and how its values travel through JSON."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        self.name = table.name
        self.columns = [c.name for c in table.columns]
        self.codecs = [_codec(c) for c in table.columns]
        self.pk = [c.name for c in table.primary_key.columns]
        self.pk_index = [self.columns.index(c) for c in self.pk]

    def encode(self, row: sa.Row[Any]) -> list[Any]:
        return [_encode(v, c) for v, c in zip(row, self.codecs, strict=True)]

    def decode(self, values: list[Any]) -> dict[str, Any]:
        return {n: _decode(v, c) for n, v, c in zip(self.columns, values, self.codecs, strict=True)}

    def key(self, values: list[Any]) -> list[Any]:
        return [values[i] for i in self.pk_index]

    def mode(self) -> str:
        if self.name in BOOT_TABLES and self.pk == ["id"]:
            return self.name
        if self.name in APPEND_TABLES and self.pk == ["id"]:
            return "append"
        return "digest" if self.pk else "full"


def _reflect(conn: Connection) -> dict[str, _Table]:
    meta = sa.MetaData()
    meta.reflect(bind=conn)
    return {t.name: _Table(t) for t in meta.sorted_tables}


def _digest(values: list[Any]) -> str:
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _keytext(key: list[Any]) -> str:
    return json.dumps(key, separators=(",", ":"), ensure_ascii=False)


# --------------------------------------------------------------------------- files


class _Writer:
    """Writes a backup's files under a hidden folder; :meth:`seal` names it."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.tmp = root / f".{name}.{uuid.uuid4().hex[:6]}.partial"
        self.tmp.mkdir(parents=True)
        self.files: dict[str, dict[str, Any]] = {}

    def path(self, rel: str) -> Path:
        p = self.tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def lines(self, rel: str, rows: Iterable[Any]) -> int:
        """Write ``rows`` as gzipped JSON lines; returns how many."""
        n = 0
        with gzip.open(self.path(rel), "wt", encoding="utf-8", compresslevel=6) as out:
            for row in rows:
                out.write(json.dumps(row, separators=(",", ":"), ensure_ascii=False))
                out.write("\n")
                n += 1
        self.add(rel)
        return n

    def add(self, rel: str) -> None:
        p = self.tmp / rel
        self.files[rel] = {"sha256": _sha256(p), "bytes": p.stat().st_size}

    def seal(self, manifest: dict[str, Any]) -> Path:
        manifest["files"] = self.files
        with open(self.tmp / MANIFEST, "w", encoding="utf-8") as out:
            json.dump(manifest, out, indent=1, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        final = self.root / self.name
        os.rename(self.tmp, final)
        _fsync_dir(self.root)
        return final

    def abandon(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_lines(path: Path) -> Iterator[Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


@dataclass
class _Backup:
    """A backup found in a backup folder."""

    path: Path
    number: int
    kind: str
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, rel: str) -> Path:
        return self.path / rel

    def verify(self) -> None:
        """Every file the manifest lists is there with its size and SHA-256."""
        for rel, info in sorted(self.manifest.get("files", {}).items()):
            p = self.path / rel
            if not p.is_file():
                raise BackupError(f"backup file {p} is missing")
            if p.stat().st_size != info["bytes"] or _sha256(p) != info["sha256"]:
                raise BackupError(
                    f"backup file {p} is corrupted: its checksum does not match the manifest"
                )


def _backups(root: Path) -> list[_Backup]:
    found: list[_Backup] = []
    if not root.is_dir():
        return found
    for p in sorted(root.iterdir()):
        m = _NAME.match(p.name)
        if not m or not p.is_dir():
            continue
        mf = p / MANIFEST
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise ValueError("not a packline backup manifest")
        except FileNotFoundError:
            raise BackupError(f"backup {p} has no {MANIFEST}") from None
        except (OSError, ValueError) as exc:
            raise BackupError(f"backup file {mf} is corrupted: {exc}") from None
        found.append(_Backup(path=p, number=int(m.group(1)), kind=m.group(2), manifest=manifest))
    found.sort(key=lambda b: b.number)
    return found


# --------------------------------------------------------------------------- backup


def backup(
    url: str, to: Path, *, full: bool = False, now: dt.datetime | None = None
) -> BackupResult:
    """Back up the database at ``url`` into the folder ``to``: full or incremental.

    An incremental backup with no backup before it in ``to``, or after a schema change
    or a change of database kind, is taken as a full one (the result's ``note`` says
    so).
    """
    now = now or dt.datetime.now(dt.UTC)
    try:
        to.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {to}: {exc.strerror}") from None
    engine = _create_engine(url)
    try:
        previous = _backups(to)
        last = previous[-1] if previous else None
        number = (last.number + 1) if last else 1
        backend = engine.dialect.name
        note = ""
        with engine.connect() as conn:
            revision = _revision(conn)
        if not full:
            if last is None:
                full, note = True, "no backup before it in this folder: taken in full"
            elif last.manifest.get("backend") != backend:
                full, note = True, f"the last backup is of a {last.manifest.get('backend')} db"
            elif last.manifest.get("alembic_revision") != revision:
                full, note = True, "the schema changed since the last backup: taken in full"
        kind = "full" if full else "incremental"
        stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        writer = _Writer(to, f"{number:04d}-{kind}-{stamp}")
        try:
            manifest: dict[str, Any] = {
                "format": FORMAT,
                "kind": kind,
                "number": number,
                "parent": None if full else last.name if last else None,
                "created_at": now.isoformat(),
                "backend": backend,
                "database": _shown(engine),
                "alembic_revision": revision,
            }
            if full:
                rows = _full(engine, writer, manifest)
            else:
                assert last is not None
                last.verify()
                rows = _incremental(engine, writer, manifest, last)
            path = writer.seal(manifest)
        except BaseException:
            writer.abandon()
            raise
        size = sum(f["bytes"] for f in writer.files.values())
        return BackupResult(
            name=path.name,
            kind=kind,
            path=path,
            rows=rows,
            tables=len(manifest["tables"]),
            bytes=size,
            note=note,
        )
    except sa.exc.SQLAlchemyError as exc:
        reason = error_reason(exc)
        raise BackupError(f"cannot back up {_shown(engine)}: {reason}") from None
    finally:
        engine.dispose()


def _revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table("alembic_version"):
        raise BackupError(
            f"{_shown_conn(conn)} is not a packline central database (no alembic_version)"
        )
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _shown_conn(conn: Connection) -> str:
    return conn.engine.url.render_as_string(hide_password=True)


def _watermarks(engine: Engine) -> dict[str, int]:
    """The highest ``id`` of each id-ordered table below which no row can still appear."""
    with engine.connect() as conn:
        names = [n for n in (*BOOT_TABLES, *APPEND_TABLES) if sa.inspect(conn).has_table(n)]
    out: dict[str, int] = {}
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql" and names:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '120s'")
            conn.exec_driver_sql(f"LOCK TABLE {', '.join(names)} IN SHARE MODE")
        for n in names:
            out[n] = _max_id(conn, n)
    return out


def _max_id(conn: Connection, table: str) -> int:
    return int(conn.execute(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one())


def _snapshot_state(
    conn: Connection,
    tables: dict[str, _Table],
    writer: _Writer,
    manifest: dict[str, Any],
    *,
    digests: bool = True,
) -> None:
    """Counts, boot offsets and row digests as of ``conn``'s snapshot, into the backup."""
    manifest["tables"] = {}
    for t in tables.values():
        count = conn.execute(sa.select(sa.func.count()).select_from(t.table)).scalar_one()
        manifest["tables"][t.name] = {"mode": t.mode(), "count": count, "columns": t.columns}
        if t.mode() == "digest" and digests:
            writer.lines(f"digests/{t.name}.jsonl.gz", _digests(conn, t))
    if "station_boots" in tables:
        boots = conn.execute(
            sa.text("SELECT station, boot_id, mono_offset FROM station_boots")
        ).all()
        writer.lines("state/boots.jsonl.gz", ([r[0], r[1], r[2]] for r in boots))


def _digests(conn: Connection, t: _Table) -> Iterator[list[str]]:
    result = conn.execution_options(yield_per=_CHUNK).execute(sa.select(t.table))
    for row in result:
        values = t.encode(row)
        yield [_keytext(t.key(values)), _digest(values)]


def _full(engine: Engine, writer: _Writer, manifest: dict[str, Any]) -> int:
    marks = _watermarks(engine)
    if engine.dialect.name == "sqlite":
        copy = writer.path("central.sqlite")
        backup_sqlite_file(Path(str(engine.url.database)), copy)
        writer.add("central.sqlite")
        # Read-only: opening it for writing would change the file just checksummed.
        snap = sa.create_engine(f"sqlite:///file:{copy}?mode=ro&uri=true")
        try:
            with snap.connect() as conn:
                tables = _reflect(conn)
                # The copy is the snapshot: its own maxima are exact.
                marks = {n: _max_id(conn, n) for n in marks}
                _snapshot_state(conn, tables, writer, manifest)
        finally:
            snap.dispose()
    else:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
                server = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
                tables = _reflect(conn)
                _snapshot_state(conn, tables, writer, manifest)
                _pg_dump(engine, server // 10000, snapshot, writer.path("central.pgdump"))
                writer.add("central.pgdump")
    manifest["watermarks"] = marks
    return sum(int(t["count"]) for t in manifest["tables"].values())


def backup_sqlite_file(source: Path, dest: Path) -> None:
    """Copy the SQLite database ``source`` to ``dest`` with the online backup API.

    Safe while other processes write to ``source``: the copy is one consistent
    snapshot (in WAL mode writers are not even held up).
    """
    if not source.is_file():
        raise BackupError(f"no database file at {source}")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
            ok = dst.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":  # pragma: no cover - a damaged source
                raise BackupError(f"the copy of {source} fails its check: {ok}")
            # The copy stands alone: one file, no -wal beside it.
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from None
    finally:
        src.close()
    with open(dest, "rb") as f:
        os.fsync(f.fileno())


def _pg_tool(tool: str, major: int) -> str:
    """The ``pg_dump``/``pg_restore`` matching server version ``major`` (or newer)."""
    candidates = [f"/usr/lib/postgresql/{major}/bin/{tool}"]
    found = shutil.which(tool)
    if found:
        candidates.append(found)
    for path in candidates:
        if not os.access(path, os.X_OK):
            continue
        out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
        m = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
        if m and int(m.group(1)) >= major:
            return path
        if m:
            raise BackupError(
                f"{tool} {m.group(1)} cannot handle a PostgreSQL {major} server: "
                f"install postgresql-client-{major}"
            )
    raise BackupError(f"{tool} is not installed: install postgresql-client-{major}")


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment that carries it."""
    url = engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _pg_dump(engine: Engine, major: int, snapshot: str, dest: Path) -> None:
    uri, env = _libpq(engine)
    tool = _pg_tool("pg_dump", major)
    cmd = [tool, "--format=custom", f"--snapshot={snapshot}", f"--file={dest}", f"--dbname={uri}"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise BackupError(f"pg_dump of {_shown(engine)} failed: {why}")


def _incremental(engine: Engine, writer: _Writer, manifest: dict[str, Any], last: _Backup) -> int:
    prev_marks: dict[str, int] = last.manifest.get("watermarks", {})
    marks = _watermarks(engine) if engine.dialect.name == "postgresql" else None
    rows = 0
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            from central.db import READ_ONLY

            conn = conn.execution_options(**READ_ONLY)
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            tables = _reflect(conn)
            if marks is None:  # SQLite: the snapshot's own maxima
                marks = {n: _max_id(conn, n) for n in (*BOOT_TABLES, *APPEND_TABLES) if n in tables}
            moved = _moved_boots(conn, last) if "station_boots" in tables else []
            for t in tables.values():
                rel = f"tables/{t.name}.jsonl.gz"
                mode = t.mode()
                if mode in ("append", "events", "shipments"):
                    since = int(prev_marks.get(t.name, 0))
                    rows += writer.lines(rel, (["u", r] for r in _since(conn, t, since, moved)))
                elif mode == "digest":
                    # One pass: the changes, and the digests the next backup compares with.
                    old = last.file(f"digests/{t.name}.jsonl.gz")
                    kept = f"digests/{t.name}.jsonl.gz"
                    with gzip.open(writer.path(kept), "wt", encoding="utf-8") as out:
                        changes = _changed(conn, t, old if old.is_file() else None, out)
                        rows += writer.lines(rel, changes)
                    writer.add(kept)
                else:
                    rows += writer.lines(rel, (["u", t.encode(r)] for r in _all(conn, t)))
            _snapshot_state(conn, tables, writer, manifest, digests=False)
    manifest["watermarks"] = marks
    for name, info in manifest["tables"].items():
        info["applied"] = f"tables/{name}.jsonl.gz"
    return rows


def _moved_boots(conn: Connection, last: _Backup) -> list[tuple[str, str]]:
    """Station boots whose clock offset is new or moved since the ``last`` backup."""
    held: dict[tuple[str, str], float] = {}
    path = last.file("state/boots.jsonl.gz")
    if path.is_file():
        held = {(s, b): off for s, b, off in _read_lines(path)}
    now = conn.execute(sa.text("SELECT station, boot_id, mono_offset FROM station_boots")).all()
    return [(r[0], r[1]) for r in now if held.get((r[0], r[1])) != r[2]]


def _all(conn: Connection, t: _Table) -> Iterator[sa.Row[Any]]:
    yield from conn.execution_options(yield_per=_CHUNK).execute(sa.select(t.table))


def _since(
    conn: Connection, t: _Table, since: int, moved: list[tuple[str, str]]
) -> Iterator[list[Any]]:
    table = t.table
    query = sa.select(table).where(table.c.id > since).order_by(table.c.id)
    yield from (t.encode(r) for r in conn.execution_options(yield_per=_CHUNK).execute(query))
    if t.name not in BOOT_TABLES or not moved:
        return
    # Rows below the watermark that a boot's clock correction rewrote.
    for station, boot in moved:
        ev = sa.table("events", sa.column("event_id"), sa.column("station"), sa.column("boot_id"))
        of_boot = sa.select(ev.c.event_id).where(ev.c.station == station, ev.c.boot_id == boot)
        if t.name == "events":
            query = sa.select(table).where(
                table.c.id <= since, table.c.station == station, table.c.boot_id == boot
            )
        else:
            query = sa.select(table).where(table.c.id <= since, table.c.event_id.in_(of_boot))
        yield from (t.encode(r) for r in conn.execute(query.order_by(table.c.id)))


def _changed(
    conn: Connection, t: _Table, old: Path | None, digests: IO[str]
) -> Iterator[list[Any]]:
    """``["u", row]`` for rows new or changed since the ``old`` digests, ``["d", key]``
    for keys gone; every row's digest goes to ``digests``."""
    held: dict[str, str] = {}
    if old is not None:
        held = {k: d for k, d in _read_lines(old)}
    for row in _all(conn, t):
        values = t.encode(row)
        key = _keytext(t.key(values))
        digest = _digest(values)
        digests.write(json.dumps([key, digest], separators=(",", ":"), ensure_ascii=False))
        digests.write("\n")
        if held.pop(key, None) != digest:
            yield ["u", values]
    for key in held:
        yield ["d", json.loads(key)]


# --------------------------------------------------------------------------- restore


def restore(source: Path, url: str) -> RestoreResult:
    """Restore the last full backup in ``source`` and every incremental after it."""
    chain = _chain(source)
    for b in chain:
        b.verify()
    full = chain[0]
    engine = _create_engine(url)
    result = RestoreResult(backups=[b.name for b in chain])
    try:
        backend = full.manifest.get("backend")
        if engine.dialect.name != backend:
            raise BackupError(
                f"{full.path} is a backup of a {backend} database; "
                f"restore it into a {backend} database, not {engine.dialect.name}"
            )
        _refuse_non_empty(engine)
        if backend == "sqlite":
            target = Path(str(engine.url.database))
            backup_sqlite_file(full.file("central.sqlite"), target)
        else:
            with engine.connect() as conn:
                server = int(conn.exec_driver_sql("SHOW server_version_num").scalar_one())
            _pg_restore(engine, server // 10000, full.file("central.pgdump"))
        engine.dispose()
        for b in chain[1:]:
            result.rows += _apply(engine, b)
        if backend == "postgresql":
            _bump_sequences(engine)
        result.tables = _check_counts(engine, chain[-1])
    except sa.exc.SQLAlchemyError as exc:
        reason = error_reason(exc)
        raise BackupError(f"cannot restore into {_shown(engine)}: {reason}") from None
    finally:
        engine.dispose()
    return result


def _chain(source: Path) -> list[_Backup]:
    if not source.is_dir():
        raise BackupError(f"no backup folder at {source}")
    found = _backups(source)
    fulls = [i for i, b in enumerate(found) if b.kind == "full"]
    if not fulls:
        raise BackupError(f"no full backup in {source}")
    chain = found[fulls[-1] :]
    for before, after in itertools.pairwise(chain):
        if after.manifest.get("parent") != before.name:
            raise BackupError(
                f"backup {after.path} follows {after.manifest.get('parent')}, "
                f"not {before.name}: the chain is broken"
            )
    return chain


def _refuse_non_empty(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        path = Path(str(engine.url.database))
        if not path.exists() or path.stat().st_size == 0:
            return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            names = list(
                conn.exec_driver_sql(
                    "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname "
                    "NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
                ).scalars()
            )
        else:
            names = sa.inspect(conn).get_table_names()
    if names:
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise BackupError(
            f"{_shown(engine)} is not empty ({len(names)} tables: {shown}); "
            "restore needs an empty database"
        )


def _pg_restore(engine: Engine, major: int, dump: Path) -> None:
    uri, env = _libpq(engine)
    tool = _pg_tool("pg_restore", major)
    cmd = [
        tool,
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={uri}",
        str(dump),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise BackupError(f"pg_restore of {dump} into {_shown(engine)} failed: {why}")


def _apply(engine: Engine, b: _Backup) -> int:
    """Apply the incremental backup ``b``: deletes first, then inserts and updates."""
    n = 0
    with engine.begin() as conn:
        tables = _reflect(conn)
        listed = b.manifest["tables"]
        missing = sorted(set(listed) - set(tables))
        if missing:
            raise BackupError(f"{b.path} holds tables the database lacks: {', '.join(missing)}")
        order = [t for t in tables.values() if t.name in listed]
        for t in reversed(order):
            info = listed[t.name]
            if info["mode"] == "full":
                conn.execute(t.table.delete())
                continue
            keys = [k for op, k in _read_lines(b.file(info["applied"])) if op == "d"]
            for i in range(0, len(keys), _CHUNK):
                part = keys[i : i + _CHUNK]
                conn.execute(
                    t.table.delete().where(
                        sa.tuple_(*(t.table.c[c] for c in t.pk)).in_([tuple(k) for k in part])
                    )
                )
                n += len(part)
        for t in order:
            info = listed[t.name]
            batch: list[dict[str, Any]] = []
            for op, values in _read_lines(b.file(info["applied"])):
                if op != "u":
                    continue
                batch.append(t.decode(values))
                if len(batch) >= _CHUNK:
                    _upsert(conn, t, batch, keep=info["mode"] == "append")
                    n += len(batch)
                    batch = []
            if batch:
                _upsert(conn, t, batch, keep=info["mode"] == "append")
                n += len(batch)
    return n


def _upsert(conn: Connection, t: _Table, rows: list[dict[str, Any]], *, keep: bool) -> None:
    if not t.pk:
        conn.execute(t.table.insert(), rows)
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Any = pg_insert(t.table)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(t.table)
    others = [c for c in t.columns if c not in t.pk]
    if keep or not others:
        # Append-only rows never change (and their triggers refuse an UPDATE).
        stmt = stmt.on_conflict_do_nothing(index_elements=t.pk)
    else:
        stmt = stmt.on_conflict_do_update(
            index_elements=t.pk, set_={c: stmt.excluded[c] for c in others}
        )
    conn.execute(stmt, rows)


def _bump_sequences(engine: Engine) -> None:
    """Move each serial column's sequence past the rows the incrementals inserted."""
    with engine.begin() as conn:
        for t in _reflect(conn).values():
            for col in t.table.primary_key.columns:
                seq = conn.execute(
                    sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": t.name, "c": col.name}
                ).scalar()
                if seq:
                    conn.execute(
                        sa.text(
                            f'SELECT setval(:s, COALESCE((SELECT MAX("{col.name}") '
                            f'FROM "{t.name}"), 1), (SELECT COUNT(*) > 0 FROM "{t.name}"))'
                        ),
                        {"s": seq},
                    )


def _check_counts(engine: Engine, last: _Backup) -> int:
    with engine.connect() as conn:
        tables = _reflect(conn)
        for name, info in last.manifest["tables"].items():
            if name not in tables:
                raise BackupError(f"restored database lacks table {name} of {last.path}")
            count = conn.execute(
                sa.select(sa.func.count()).select_from(tables[name].table)
            ).scalar_one()
            if count != info["count"]:
                raise BackupError(
                    f"restored table {name} has {count} rows, {last.path} counted {info['count']}"
                )
    return len(last.manifest["tables"])
