"""Kill -9 the edge agent at random points of scripted orders, and check what it left.

:class:`BenchChaos` runs ``packline edge run`` as a real process reading a
pseudo-terminal as its serial scanner and printing on the shipped fake Brother QL
(raster over TCP, status and page counter over SNMP). Each round it reads the
station's store to see where the packer is (the state survives the kill), types the
scans that come next — badge, order, items, ``CMD-NEXT-PARCEL`` — and SIGKILLs the
agent at a random moment. :meth:`BenchChaos.check` then proves from the store and the
printer's pages that every confirmed parcel exists once (one record, one event, one
label), that no order is marked shipped without its events, and each round that the
order in progress came back as it was. Used by ``tests/test_bench_chaos.py`` (30
kills) and ``bench/chaos_bench.py`` (200+).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import zxingcpp

from drivers.fakes.ql import FakeQLPrinter
from packline.devbroker import free_port
from packline.samples import sample_orders
from tests.support.processes import SCANNER_READY, query
from tests.support.waiting import wait_for

PACKLINE = [sys.executable, "-m", "packline"]
BADGE = "OP-0042"


def chaos_orders(count: int, *, seed: int = 11) -> list[dict[str, Any]]:
    """Sample orders; every third with two items or more ships in two parcels, each
    with its own tracking number."""
    orders = sample_orders(count, prefix="KX", seed=seed)
    for i, order in enumerate(orders):
        items = sum(line["qty"] for line in order["lines"])
        if i % 3 == 0 and items >= 2:
            order["parcels"] = [{}, {"tracking_no": order["tracking_no"] + "B"}]
    return orders


@dataclasses.dataclass
class ChaosResult:
    """What the rounds did and what the checks found."""

    kills: int = 0
    rounds_mid_order: int = 0
    resumed_as_left: int = 0
    parcels_shipped: int = 0
    orders_shipped: int = 0
    waybill_pages: int = 0
    duplicates_recovered: int = 0
    seconds: float = 0.0
    problems: list[str] = dataclasses.field(default_factory=list)


class BenchChaos:
    """One station, its fake printer and its scanner pty, killed over and over."""

    def __init__(self, workdir: Path, *, orders: int = 40, seed: int = 1) -> None:
        self.workdir = workdir
        self.rng = random.Random(seed)
        self.orders = chaos_orders(orders)
        self.by_no = {o["order_no"]: o for o in self.orders}
        self.data = workdir / "station"
        self.data.mkdir(parents=True, exist_ok=True)
        self.db = self.data / "kx.sqlite"
        self.log = self.data / "edge.log"
        self.fake = FakeQLPrinter(label="62", slow=0.02)
        self.master, self._slave = os.openpty()
        self.tty = os.ttyname(self._slave)
        self.config = self.data / "station.toml"
        self.config.write_text(
            "\n".join(
                [
                    'station = "kx"',
                    'site = "chaos"',
                    f'data_dir = "{self.data}"',
                    'mqtt_url = "mqtt://127.0.0.1:1"',
                    f'scanner = "serial://{self.tty}?baud=9600&terminator=cr"',
                    f'printer = "{self.fake.url}&poll_interval=0.02"',
                    "print_packing_list = true",
                    f'kiosk_listen = "127.0.0.1:{free_port()}"',
                    "",
                ]
            )
        )
        order_file = workdir / "orders.json"
        order_file.write_text(json.dumps(self.orders, ensure_ascii=False))
        done = subprocess.run(
            [*PACKLINE, "edge", "orders", "import", str(order_file), "--config", str(self.config)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.result = ChaosResult()

    # -- the process -----------------------------------------------------------------

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*PACKLINE, "edge", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

        def reading() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"the agent exited: {self.log.read_text()[-3000:]}")
            return self.log.read_text(errors="replace").count(SCANNER_READY) >= self.starts

        wait_for(reading, what="the agent to read its scanner", timeout=60)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None
        self.result.kills += 1

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.stop()
        self.fake.stop()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def scan(self, code: str) -> None:
        os.write(self.master, code.encode() + b"\r")

    # -- where the packer is ---------------------------------------------------------

    def state(self) -> dict[str, Any]:
        rows = query(self.db, "SELECT state FROM bench_state")
        return json.loads(rows[0][0]) if rows else {}

    def shipped(self) -> dict[str, set[int]]:
        found: dict[str, set[int]] = collections.defaultdict(set)
        for order_no, parcel_no in query(self.db, "SELECT order_no, parcel_no FROM shipments"):
            found[order_no].add(parcel_no)
        return found

    def next_scans(self) -> list[str]:
        """What the packer scans next, from the store: the rest of the order in
        progress, or the next order not yet shipped."""
        state = self.state()
        scans: list[str] = []
        if state.get("alarm"):
            scans.append("CMD-OK")
        if not state.get("operator"):
            scans.append(BADGE)
        progress = state.get("order")
        if progress is not None:
            if state.get("failed_prints"):
                scans.append("CMD-REPRINT")
            return scans + self._rest_of(progress)
        shipped = self.shipped()
        for order in self.orders:
            count = order["parcels"] if isinstance(order["parcels"], int) else 2
            if len(shipped.get(order["order_no"], ())) < count:
                return [*scans, order["order_no"], *self._all_items(order, count)]
        return scans

    @staticmethod
    def _all_items(order: dict[str, Any], parcels: int) -> list[str]:
        items = [line["barcode"] for line in order["lines"] for _ in range(line["qty"])]
        scans: list[str] = []
        for n, item in enumerate(items):
            scans.append(item)
            if n < parcels - 1:
                scans.append("CMD-NEXT-PARCEL")
        return scans

    @staticmethod
    def _rest_of(progress: dict[str, Any]) -> list[str]:
        items = [
            line["code"]
            for line in progress["lines"]
            for _ in range(line["qty"] - line["verified"])
        ]
        parcels = progress["parcels"]
        current = progress["current"]
        scans: list[str] = []
        # Close the parcels still to fill with one item each, the last takes the rest.
        for parcel in parcels[current - 1 : -1]:
            if not parcel["contents"]:
                if not items:
                    break
                scans.append(items.pop(0))
            scans.append("CMD-NEXT-PARCEL")
        return scans + items

    # -- the rounds ------------------------------------------------------------------

    def round(self) -> None:
        """Type what comes next, kill at a random moment, start again, check the resume."""
        if self.proc is None:
            self.start()
        before = self.state().get("order")
        scans = self.next_scans()
        if before is not None:
            self.result.rounds_mid_order += 1
        kill_at = time.monotonic() + self.rng.uniform(0.02, 0.9)
        for code in scans:
            self.scan(code)
            time.sleep(self.rng.uniform(0.0, 0.1))
            if time.monotonic() >= kill_at:
                break
        time.sleep(max(0.0, kill_at - time.monotonic()))
        self.kill()
        left = self.state().get("order")
        self.start()
        # Resuming only prints what was decided; it never counts or forgets an item.
        back = self.state().get("order")
        if left is not None:
            if back is None or _progress(back) != _progress(left):
                self.result.problems.append(
                    f"round {self.result.kills}: the order in progress did not resume as left"
                )
            else:
                self.result.resumed_as_left += 1

    def finish(self, *, timeout: float = 300) -> None:
        """Run without kills until every order is shipped, then stop cleanly."""
        if self.proc is None:
            self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            scans = self.next_scans()
            if not scans or scans == [BADGE]:
                if self._all_shipped():
                    break
                self._settle()  # a label the restart is printing: wait for it
                continue
            if self.proc is None or self.proc.poll() is not None:
                self.result.problems.append(f"the agent died: {self.log.read_text()[-2000:]}")
                break
            for code in scans:
                self.scan(code)
            self._settle()
        self._settle()
        left = self.next_scans()
        if left and left != [BADGE]:
            state = json.dumps(self.state(), ensure_ascii=False)[:1500]
            self.result.problems.append(f"finished with scans left {left}; state {state}")
        self.stop()

    def _all_shipped(self) -> bool:
        shipped = self.shipped()
        return all(
            len(shipped.get(o["order_no"], ()))
            == (o["parcels"] if isinstance(o["parcels"], int) else len(o["parcels"]))
            for o in self.orders
        )

    def _settle(self) -> None:
        """Wait until the bench has answered everything typed (its log stops growing)."""
        last, still = -1, 0
        while still < 3:
            size = self.log.stat().st_size
            still = still + 1 if size == last else 0
            last = size
            time.sleep(0.3)

    # -- the checks ------------------------------------------------------------------

    def check(self) -> ChaosResult:
        r = self.result
        rows = query(self.db, "SELECT order_no, parcel_no, print_job_id, contents FROM shipments")
        events = [(t, json.loads(p)) for t, p in query(self.db, "SELECT type, payload FROM events")]
        shipped_events = collections.Counter(
            (p["order_no"], p["parcel_no"]) for t, p in events if t == "shipment.shipped"
        )
        rows_by_parcel = collections.Counter((o, n) for o, n, _, _ in rows)
        for key, count in shipped_events.items():
            if count != 1 or rows_by_parcel[key] != 1:
                r.problems.append(f"parcel {key}: {count} events, {rows_by_parcel[key]} rows")
        if set(rows_by_parcel) != set(shipped_events):
            r.problems.append("shipment rows and shipment.shipped events differ")
        printed_jobs = {p["job_id"] for t, p in events if t == "label.printed"}
        r.duplicates_recovered = sum(
            1 for t, p in events if t == "label.printed" and p["duplicate"]
        )
        packed = {p["order_no"] for t, p in events if t == "order.packed"}
        started = {p["order_no"] for t, p in events if t == "order.started"}
        verified: collections.Counter[tuple[str, str]] = collections.Counter()
        for t, p in events:
            if t == "item.verified":
                verified[(p["order_no"], p["sku"])] += p["qty"]
        for order_no, parcel_no, job_id, _ in rows:
            if job_id not in printed_jobs:
                r.problems.append(f"{order_no}/{parcel_no} shipped without its label.printed")
        shipped = self.shipped()
        for order_no, parcels in shipped.items():
            order = self.by_no[order_no]
            count = order["parcels"] if isinstance(order["parcels"], int) else 2
            if len(parcels) != count:
                continue
            r.orders_shipped += 1
            if order_no not in packed or order_no not in started:
                r.problems.append(f"{order_no} shipped without order.started/order.packed")
            for line in order["lines"]:
                if verified[(order_no, line["sku"])] != line["qty"]:
                    r.problems.append(
                        f"{order_no} {line['sku']}: {verified[(order_no, line['sku'])]} verified,"
                        f" {line['qty']} ordered"
                    )
        r.parcels_shipped = len(rows)
        # The printer's side: every shipped parcel's waybill came out exactly once.
        tracking = {}
        for order in self.orders:
            count = order["parcels"] if isinstance(order["parcels"], int) else 2
            tracking[order["tracking_no"]] = (order["order_no"], 1)
            if count == 2:
                tracking[order["tracking_no"] + "B"] = (order["order_no"], 2)
        pages: collections.Counter[tuple[str, int]] = collections.Counter()
        for job in self.fake.jobs:
            for page in job.pages:
                for found in zxingcpp.read_barcodes(page):
                    if found.text in tracking:
                        pages[tracking[found.text]] += 1
                        break
        r.waybill_pages = sum(pages.values())
        for key, count in pages.items():
            if count > 1:
                r.problems.append(f"parcel {key}: its waybill printed {count} times")
        for key in rows_by_parcel:
            if pages[key] != 1:
                r.problems.append(f"parcel {key} shipped with {pages[key]} waybills printed")
        if "Traceback" in self.log.read_text(errors="replace"):
            r.problems.append("a traceback in the agent's log")
        return r


def _progress(order: dict[str, Any]) -> tuple[Any, ...]:
    return (
        order["order"]["order_no"],
        tuple(line["verified"] for line in order["lines"]),
        tuple(sorted(p["contents"].items()) for p in order["parcels"]),
        order["current"],
    )
