"""C2 end to end: a bench whose wall clock is 3 h behind, offline for its first ten
scans, then online. Central's times for all ten are the true ones, and flagged.

Mosquitto and ``packline central serve`` are real processes. The bench is the real agent
(``edge.factory.build_agent``) in this process, because its clock is injected
(``edge/clock.py``): the wall clock 3 h behind, the monotonic clock and boot id real. The
truth is this machine's clock, which central's is.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from pathlib import Path

import pytest

from drivers.fakes.scanner import ScriptedScanner
from edge.factory import build_agent
from edge.settings import StationSettings
from packline.devbroker import MosquittoBroker
from packline.samples import packing_scans, sample_orders
from sync.messages import OrdersMessage
from sync.order import Order
from tests.support.cli import run_packline
from tests.support.processes import Central, query
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

BEHIND = 3 * 3600.0


class BehindClock:
    """The machine's clocks with the wall clock ``BEHIND`` seconds behind: a Pi that
    booted without a real-time clock and has not reached NTP."""

    def __init__(self) -> None:
        self.boot_id = f"boot-{uuid.uuid4()}"

    def wall(self) -> float:
        return time.time() - BEHIND

    def mono(self) -> float:
        return time.monotonic()


def parse(text: str) -> dt.datetime:
    # SQLite keeps UTC timestamps as naive text.
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_an_offline_bench_3h_behind_gets_true_times_at_central(
    tmp_path: Path, own_broker: MosquittoBroker
) -> None:
    site = f"skew-{uuid.uuid4().hex[:6]}"
    central = Central(workdir=tmp_path, mqtt_url=own_broker.url, site=site).start()
    own_broker.stop()  # the bench's first hours: no network
    settings = StationSettings(
        station="bench-skew",
        site=site,
        data_dir=tmp_path / "bench",
        mqtt_url=own_broker.url,
        scanner="script:",
        printer=f"file://{tmp_path / 'printed'}",
        label_size="62",
        resend_after=1.0,
        require_operator=False,
        print_packing_list=False,
    )
    agent = build_agent(
        settings, version="test", clock=BehindClock(), scanner=ScriptedScanner(scans=[])
    )
    sample = sample_orders(10, prefix="SKEW")
    orders = [Order.model_validate(o) for o in sample]
    agent.store.apply_orders(OrdersMessage(orders=orders, cursor=0))
    runner = threading.Thread(target=agent.run, name="bench", daemon=True)
    runner.start()
    truth: dict[str, tuple[float, float]] = {}
    try:
        for i, (order, data) in enumerate(zip(orders, sample, strict=True)):
            if i in (4, 7):
                time.sleep(2.0)  # the scans are spread over real time
            *verify, last = packing_scans(data)
            for code in verify:
                assert agent.handle_scan(code).outcome in ("ok", "info"), code
            before = time.time()  # the last item's scan prints the waybill and ships
            assert agent.handle_scan(last).outcome in ("ok", "done"), last
            truth[order.order_no] = (before, time.time())
        assert len(agent.store.shipments()) == 10
        # The packer's screen says why nothing goes to central.
        wait_for(lambda: agent.view().sync.link == "unreachable", what="the link down")
        link = agent.view().sync
        assert link.broker.startswith(f"cannot reach the broker at {own_broker.url}"), link
        assert link.clock_skew_s is None and not link.clock_skew_large
        recorded = len(agent.store.events())
        assert agent.store.backlog() == recorded  # all held
        time.sleep(2.0)  # still offline for a while after the last scan

        own_broker.start()
        wait_for(
            lambda: len(query(central.db, "SELECT 1 FROM shipments")) == 10,
            what="the ten shipments at central",
            timeout=90,
        )
        wait_for(lambda: agent.store.backlog() == 0, what="the outbox to drain", timeout=60)
        wait_for(lambda: agent.uplink.clock_skew_s is not None, what="central's time at the bench")
        assert agent.uplink.clock_skew_s == pytest.approx(-BEHIND, abs=3)
        # ...and on the packer's screen, with the link back.
        link = agent.view().sync
        assert link.link == "connected" and link.broker.startswith("connected to the broker")
        assert link.clock_skew_large and link.clock_skew_s == pytest.approx(-BEHIND, abs=3)

        rows = query(
            central.db,
            "SELECT order_no, shipped_at, shipped_at_corrected, skew_s, skewed FROM shipments",
        )
        assert len(rows) == 10
        corrected: dict[str, float] = {}
        for order_no, claimed, fixed, skew, skewed in rows:
            first, last = truth[order_no]
            at = parse(fixed).timestamp()
            corrected[order_no] = at
            # Within a few seconds of the truth (a delivery delay at most)...
            assert first - 3 <= at <= last + 3, (order_no, at - first)
            # ...the bench's claim 3 h off, and the difference flagged.
            assert parse(claimed).timestamp() == pytest.approx(first - BEHIND, abs=3)
            assert skew == pytest.approx(-BEHIND, abs=3) and skewed == 1
        # The times keep the real spacing of the scans, not the moment they arrived.
        # Each shipment happened between its "before" and "after" (a print takes longer
        # on a busy machine), so the real spread lies between those bounds.
        spread = corrected[orders[-1].order_no] - corrected[orders[0].order_no]
        (first_from, first_to), (last_from, last_to) = (
            truth[orders[0].order_no],
            truth[orders[-1].order_no],
        )
        assert last_from - first_to - 1.0 <= spread <= last_to - first_from + 1.0, spread
        assert last_from - first_to > 4

        events = query(central.db, "SELECT at_corrected FROM events WHERE station = 'bench-skew'")
        assert len(events) == recorded and all(e[0] is not None for e in events)
        station = query(central.db, "SELECT clock_skew_s FROM stations")
        assert station[0][0] == pytest.approx(-BEHIND, abs=3)
        api = central.get_json("/api/shipments")["shipments"]
        assert all(s["skewed"] for s in api) and len(api) == 10

        shown = run_packline(
            "edge", "status", "--station", "bench-skew", "--data-dir", settings.data_dir
        )
        assert shown.returncode == 0, shown.stderr
        assert "clock:    3 h 0 min behind central's (as last measured)" in shown.stdout
    finally:
        agent.stop()
        runner.join(timeout=30)
        central.stop()
