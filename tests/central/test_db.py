"""open_db: migrations to head, idempotent reopen, UTC timestamps, clear failures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from central.db import MIGRATIONS, DatabaseUnavailable, open_db, stations, utcnow
from packline.devbroker import free_port


def test_migrates_to_head_and_reopens(engine: Engine, db_url: str) -> None:
    names = set(sa.inspect(engine).get_table_names())
    assert {"stations", "events", "shipments", "orders", "sequences"} <= names
    with engine.connect() as conn:
        head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    # The newest migration file, whatever it is called (each branch adds its own).
    assert head == ScriptDirectory(str(MIGRATIONS)).get_current_head()
    again = open_db(db_url)  # an already current database is left as it is
    try:
        with again.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        again.dispose()


def test_timestamps_come_back_in_utc(engine: Engine) -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    moment = dt.datetime(2026, 11, 23, 17, 15, tzinfo=shanghai)
    with engine.begin() as conn:
        conn.execute(
            stations.insert().values(
                station="s1",
                site="x",
                online=True,
                version="",
                printer="ready",
                printer_detail="",
                scanner="ok",
                backlog=0,
                orders_cursor=0,
                acked_seq=0,
                created_at=moment,
                last_seen=utcnow(),
            )
        )
    with engine.connect() as conn:
        created = conn.execute(sa.select(stations.c.created_at)).scalar_one()
    assert created == moment
    assert created.utcoffset() == dt.timedelta(0)


def test_sqlite_uses_wal_and_creates_the_folder(tmp_path: Path) -> None:
    engine = open_db(f"sqlite:///{tmp_path / 'var' / 'central.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 10_000
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test", "cannot open database"),
        ("mysql://nobody@localhost/x", "unsupported database"),
        ("not a url", "not a database URL"),
        ("sqlite:////proc/nope/central.db", "cannot create the database folder"),
    ],
    # Named, not by the URL: a free port differs between test workers, and pytest-xdist
    # needs every worker to collect the same tests.
    ids=["postgres-nothing-listens", "mysql", "not-a-url", "sqlite-folder-not-made"],
)
def test_unusable_database_is_one_clear_line(url: str, says: str) -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        open_db(url)
    assert says in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.postgres
@pytest.mark.parametrize(("worker", "database"), [("", "test"), ("gwprobe", "test_gwprobe")])
def test_each_test_worker_has_a_postgres_database_of_its_own(
    monkeypatch: pytest.MonkeyPatch, worker: str, database: str
) -> None:
    # Advisory locks (central's leader, the migration lock) are per database: two
    # pytest-xdist workers in one would meet in them, whatever their schemas.
    from tests.support.central import postgres_reachable, postgres_schema

    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    with postgres_schema() as url:
        eng = sa.create_engine(url)
        try:
            with eng.connect() as conn:
                assert conn.execute(sa.text("SELECT current_database()")).scalar() == database
                schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
                assert str(schema).startswith("t_")
        finally:
            eng.dispose()
    if worker:  # no real worker is called so: leave nothing behind
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
