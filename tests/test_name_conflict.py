"""Two benches with one name (a copied station.toml): central tells them apart by their
stores' instance ids, takes the first one's records, keeps the second's in the dead
letters (and in its outbox), raises an alert naming both, and both benches say
"another bench uses the name bench-03". All real processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from packline.devbroker import MosquittoBroker
from packline.samples import sample_orders
from tests.support.cli import run_packline
from tests.support.processes import Central, Station, query
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

SITE = "twins"
NAME = "bench-03"
SAID = f"another bench uses the name {NAME}"
TWINS = sample_orders(4, prefix="TWIN")


@pytest.fixture
def central(tmp_path: Path, broker: MosquittoBroker) -> Iterator[Central]:
    c = Central(workdir=tmp_path, mqtt_url=broker.url, site=SITE)
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps(TWINS, ensure_ascii=False))
    assert c.import_orders(orders).returncode == 0
    c.start()
    yield c
    c.stop()


def assert_alert_raised(central: Central, key: str, message: str) -> None:
    """Through the watch engine when this build has it, else as central's log line."""
    try:
        from central.watch.conditions import active_conditions  # type: ignore[import-not-found]
    except ModuleNotFoundError:
        assert f"ALERT {key} (operations, major): {message}" in central.log.read_text()
        return
    from central.db import open_db

    engine = open_db(central.db_url)
    try:
        with engine.connect() as conn:
            assert key in set(active_conditions(conn))
    finally:
        engine.dispose()


def instance_of(station: Station) -> str:
    """The station store's instance id; empty until the store is made."""
    rows = query(station.db, "SELECT value FROM settings WHERE key = 'instance_id'")
    return str(rows[0][0]) if rows else ""


def shipped_at_central(central: Central) -> list[str]:
    return [r[0] for r in query(central.db, "SELECT order_no FROM shipments ORDER BY id")]


def test_the_second_bench_with_a_name_is_refused_and_both_are_told(
    tmp_path: Path, central: Central
) -> None:
    first = Station(workdir=tmp_path / "a", name=NAME, mqtt_url=central.mqtt_url, site=SITE)
    second = Station(workdir=tmp_path / "b", name=NAME, mqtt_url=central.mqtt_url, site=SITE)
    try:
        first.start()
        wait_for(lambda: first.orders() == 4, what="orders at the first bench")
        first.ready()
        first.login()
        first.pack(TWINS[0])
        wait_for(lambda: shipped_at_central(central) == ["TWIN20261123000001"], what="shipped")
        owner = instance_of(first)
        assert query(central.db, "SELECT instance_id FROM stations") == [(owner,)]

        second.start()  # same name, its own store
        newcomer = wait_for(lambda: instance_of(second), what="the second store")
        assert newcomer != owner
        # A new order reaches both (they read the same topic); the second packs it.
        late = tmp_path / "late.json"
        late_orders = sample_orders(1, prefix="LATE", seed=5)
        late.write_text(json.dumps(late_orders, ensure_ascii=False))
        assert central.import_orders(late).returncode == 0
        wait_for(lambda: second.orders() >= 1, what="the new order at the second bench")
        second.ready()
        second.login()
        second.pack(late_orders[0])
        wait_for(lambda: SAID in second.log.read_text(), what="the second bench told")
        # The first bench hears of it with its next ack.
        first.pack(TWINS[1])
        wait_for(lambda: SAID in first.log.read_text(), what="the first bench told")
        wait_for(
            lambda: shipped_at_central(central)[-1:] == ["TWIN20261123000002"],
            what="the first bench's records still taken",
        )

        # Nothing of the second bench reached central's records; it is all kept.
        letters = wait_for(
            lambda: query(
                central.db,
                "SELECT reason, instance_id, detail FROM dead_letters WHERE station = ?",
                NAME,
            ),
            what="the second bench's batch in the dead letters",
        )
        assert letters and {(r[0], r[1]) for r in letters} == {("name_conflict", newcomer)}
        assert "they stay in that bench's outbox" in letters[0][2]
        assert "LATE20261123000001" not in shipped_at_central(central)
        held = query(central.db, "SELECT COUNT(*) FROM events WHERE instance_id = ?", newcomer)
        assert held == [(0,)]
        assert "shipment.shipped" in second.outbox_types()
        assert second.backlog() >= 1

        summary = (
            f"two benches use the name {NAME}: instance {owner[:8]} (had it first) and "
            f"{newcomer[:8]}; central refuses the second's records until one of them is "
            "given another name"
        )
        stations: list[dict[str, Any]] = central.get_json("/api/stations")["stations"]
        assert [s["name_conflict"] for s in stations] == [summary]
        assert stations[0]["instance_id"] == owner
        assert_alert_raised(central, f"station-name:{NAME}", summary)

        shown = run_packline("edge", "status", "--station", NAME, "--data-dir", second.data)
        assert shown.returncode == 0, shown.stderr
        assert f"name:     {SAID}: central takes the records of the bench that had it first" in (
            shown.stdout
        )
        # Both packers' screens say it, the second's as the link's state.
        for bench in (first, second):
            shown_sync = bench.kiosk_get("/api/view")["sync"]
            assert shown_sync["name_conflict"] and NAME in shown_sync["name_conflict"]
            assert shown_sync["link"] == "name_conflict"
        # They no longer throw each other off the broker: each has its own client id.
        for bench in (first, second):
            assert bench.alive()
            text = bench.log.read_text()
            assert "same client id" not in text and "Traceback" not in text
    finally:
        first.close()
        second.close()
