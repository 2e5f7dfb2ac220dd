"""C1: recipient data is erased at the bench after shipping, and never leaves it unmasked."""

from __future__ import annotations

import json
from pathlib import Path

from drivers.fakes.scanner import ScriptedScanner
from edge.factory import build_agent
from edge.settings import StationSettings
from packline.devbroker import free_port
from packline.samples import packing_scans, sample_orders
from sync.messages import OrdersMessage
from sync.order import validate_order

HOUR = 3600.0


class ManualClock:
    """A clock the test moves by hand."""

    boot_id = "boot-pii"

    def __init__(self) -> None:
        self.now = 1_795_000_000.0

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now - 1_794_000_000.0


def test_recipient_data_is_erased_after_the_retention_and_never_sent(tmp_path: Path) -> None:
    clock = ManualClock()
    settings = StationSettings.model_validate(
        {
            "station": "bench-p",
            "data_dir": tmp_path / "data",
            "mqtt_url": f"mqtt://127.0.0.1:{free_port()}",
            "scanner": "script:?scan=X&interval=0",
            "printer": f"file://{tmp_path / 'printed'}",
            "pii_retention_hours": 72,
        }
    )
    agent = build_agent(settings, version="t", clock=clock, scanner=ScriptedScanner(scans=[]))
    try:
        orders = sample_orders(3, prefix="PII")
        agent.store.apply_orders(
            OrdersMessage(orders=[validate_order(o) for o in orders], cursor=3)
        )
        shipped, waiting = orders[0], orders[1]
        agent.handle_scan("OP-5")
        for code in packing_scans(shipped):
            agent.handle_scan(code)
        assert agent.store.shipped_parcels(shipped["order_no"]) == 1

        clock.now += 71 * HOUR
        assert agent.purge_pii() == 0  # not yet
        clock.now += 2 * HOUR
        assert agent.purge_pii() == 1
        assert agent.purge_pii() == 0  # once

        erased = agent.store.order(shipped["order_no"])
        assert erased is not None
        assert (erased.recipient.name, erased.recipient.phone, erased.recipient.address) == (
            "",
            "",
            "",
        )
        assert erased.lines and erased.tracking_no  # what the bench still needs stays
        kept = agent.store.order(waiting["order_no"])  # not shipped: nothing erased
        assert kept is not None and kept.recipient.phone == waiting["recipient"]["phone"]
        (purged,) = agent.store.events(type="pii.purged")
        assert purged.payload == {"orders": 1}

        # Nothing the bench recorded (what it sends to central) holds a phone number,
        # a recipient's name or address — masked or not.
        sent = json.dumps([e.model_dump(mode="json") for e in agent.store.pending(limit=10_000)])
        for order in orders:
            recipient = order["recipient"]
            assert recipient["phone"] not in sent
            assert recipient["phone"][-4:] + '"' not in sent
            assert recipient["address"] not in sent
        # Nor does the packer's screen.
        assert shipped["recipient"]["phone"] not in agent.view().model_dump_json()
    finally:
        agent.close()
