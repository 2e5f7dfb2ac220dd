"""Central's default database: one place whatever folder a command runs in, and shown."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import pytest

from central.settings import CentralSettings, default_db_path, shown_db_url
from packline.devbroker import MosquittoBroker, free_port, stop_process
from tests.support.cli import PACKLINE, REPO, run_packline
from tests.support.waiting import wait_for

EXAMPLE = REPO / "docs" / "examples" / "order.json"


def test_the_default_follows_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_path() == tmp_path / "data" / "packline" / "central.db"
    assert CentralSettings().db_url == f"sqlite:///{tmp_path}/data/packline/central.db"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")  # not absolute: ignored, as XDG says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "packline" / "central.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_db_path() == tmp_path / "home" / ".local" / "share" / "packline" / "central.db"


def test_a_shown_database_hides_its_password() -> None:
    url = "postgresql+psycopg://packline:s3cret@db.internal:5432/packline"
    assert shown_db_url(url) == "postgresql+psycopg://packline:***@db.internal:5432/packline"
    assert shown_db_url("sqlite:////var/lib/packline/central.db").endswith("central.db")


def _orders(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT order_no FROM orders ORDER BY order_no")]


def test_imports_from_two_folders_meet_in_one_database(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    db = tmp_path / "data" / "packline" / "central.db"
    second = tmp_path / "other.json"
    second.write_text(json.dumps({**json.loads(EXAMPLE.read_text()), "order_no": "PDD-2"}))
    for folder, file in ((tmp_path / "a", EXAMPLE), (tmp_path / "b", second)):
        folder.mkdir()
        done = run_packline("central", "import-orders", file, env=env, cwd=folder)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith(f"; database sqlite:///{db}"), done.stdout
    assert _orders(db) == ["PDD-2", json.loads(EXAMPLE.read_text())["order_no"]]
    assert not list((tmp_path / "a").iterdir()) and not list((tmp_path / "b").iterdir())


@pytest.mark.mqtt
def test_serve_says_which_database_it_uses(tmp_path: Path, broker: MosquittoBroker) -> None:
    port = free_port()
    log = tmp_path / "central.log"
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    args = ["central", "serve", "--mqtt-url", broker.url, "--site", "dbshown"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*PACKLINE, *args, "--http-port", str(port)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            cwd=tmp_path,
            env={**os.environ, **env},
        )
    try:

        def up() -> bool:
            assert proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return True
            except OSError:
                return False

        wait_for(up, what="central to serve /healthz", timeout=60)
        line = wait_for(
            lambda: re.search(r"central for site dbshown: (.*)", log.read_text()),
            what="the summary line",
        )
    finally:
        stop_process(proc)
    db = tmp_path / "data" / "packline" / "central.db"
    assert line.group(1).startswith(f"database sqlite:///{db}, broker {broker.url}"), line.group(0)
    assert db.exists()
