"""Scan to feedback on the packer's screen, against the durable record alone.

A real ``packline edge run`` reads a pty as its serial scanner and serves its kiosk; a
client holds the kiosk's live stream (``/events``) open, as the page does. Each
measured scan is an item of a multi-item order (item verifications print nothing:
each order is packed up to its last item, then put aside with ``CMD-CANCEL`` and the
next one started), timed from the bytes written to the pty until the stream delivers
a view that counts it — by then the step's events and state are recorded (the view
changes only after the transaction commits). The baseline is the station store's
``record`` call alone (one event, its outbox row, one fsync'd transaction) on a store
in the same folder, timed right after each scan in the same run, so both see the same
disk and the same load.
Every view carries the "next to pack" list, so the station holds ``--waiting`` more
orders ready to pack (a busy morning's download) that the screen reads at every change.
Goal: p99 of scan-to-screen ≤ 3× p99 of the record. Not a test.

    .venv/bin/python bench/scan_feedback.py [--scans 400] [--warmup 20] [--waiting 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge.clock import SystemClock
from edge.store import StationStore
from packline.devbroker import free_port
from packline.samples import sample_orders
from sync.events import ItemVerified

GOAL_RATIO = 3.0
ORDERS = 8
LINES = 3
QTY = 4  # per line: 12 items an order, as a busy bench sees them


def an_order(n: int) -> dict[str, Any]:
    return {
        "order_no": f"SCANFB{n:06d}",
        "status": "ready",
        "carrier": "SF Express",
        "tracking_no": f"SF{n:012d}",
        "recipient": {
            "name": "测试",
            "phone": "13800000000",
            "province": "广东省",
            "city": "深圳市",
            "district": "南山区",
            "address": "科技园 1 号",
        },
        "lines": [
            {"sku": f"SKU-{k}", "name": f"item {k}", "qty": QTY, "barcode": f"6900000{k:05d}"}
            for k in range(1, LINES + 1)
        ],
    }


class Screen:
    """The kiosk's live stream, read on a thread: (arrival time, view) per ``view`` event."""

    def __init__(self, url: str) -> None:
        self.views: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self._resp = urllib.request.urlopen(url + "/events", timeout=60)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event = ""
        for raw in self._resp:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "view":
                self.views.put((time.perf_counter(), json.loads(line[6:])))

    def wait_for(self, test: Any, *, timeout: float = 30.0) -> float:
        """The arrival time of the first view for which ``test(view)`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            at, view = self.views.get(timeout=max(0.01, deadline - time.monotonic()))
            if test(view):
                return at

    def drain(self) -> None:
        while not self.views.empty():
            self.views.get_nowait()


def _packing(view: dict[str, Any], order_no: str) -> bool:
    return bool(view["order"]) and view["order"]["order_no"] == order_no


def verified(view: dict[str, Any]) -> int:
    order = view.get("order")
    return int(order["items_verified"]) if order else -1


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=400, help="measured item scans")
    parser.add_argument("--warmup", type=int, default=20, help="item scans not counted")
    parser.add_argument(
        "--waiting", type=int, default=5000, help="more orders waiting to be packed"
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="packline-scanfb-"))
    data = root / "station"
    data.mkdir()
    port = free_port()
    master, slave = os.openpty()
    config = root / "station.toml"
    config.write_text(
        "\n".join(
            [
                'station = "fb"',
                f'data_dir = "{data}"',
                f'mqtt_url = "mqtt://127.0.0.1:{free_port()}"',  # offline: no broker
                f'scanner = "serial://{os.ttyname(slave)}?baud=9600&terminator=cr"',
                f'printer = "file://{root / "printed"}"',
                "print_packing_list = false",
                f'kiosk_listen = "127.0.0.1:{port}"',
                "",
            ]
        )
    )
    order_file = root / "orders.json"
    orders = [an_order(n) for n in range(1, ORDERS + 1)]
    waiting = sample_orders(args.waiting, prefix="WAIT")
    due = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    for i, o in enumerate(waiting):
        o["pack_by"] = (due + timedelta(seconds=37 * i)).isoformat()
    order_file.write_text(json.dumps(orders + waiting, ensure_ascii=False))
    packline = [sys.executable, "-m", "packline"]
    subprocess.run(
        [*packline, "edge", "orders", "import", str(order_file), "--config", str(config)],
        check=True,
        capture_output=True,
    )
    log = (root / "edge.log").open("wb")
    proc = subprocess.Popen(
        [*packline, "edge", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    baseline = StationStore(data / "baseline.sqlite", station="base", clock=SystemClock())
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the agent did not start: see {root / 'edge.log'}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                    if resp.status == 200 and b"scanner ready" in (root / "edge.log").read_bytes():
                        break
            except OSError:
                pass
            time.sleep(0.1)
        screen = Screen(url)

        def scan(code: str) -> float:
            start = time.perf_counter()
            os.write(master, code.encode() + b"\r")
            return start

        scan("OP-0042")
        screen.wait_for(lambda v: v["operator"] == "0042")

        to_screen: list[float] = []
        record: list[float] = []
        per_order = LINES * QTY - 1  # all but the last item, which would print
        for n in range(args.warmup + args.scans):
            order, k = orders[n // per_order % ORDERS], n % per_order
            if k == 0:  # not measured: put the last order aside, start this one
                scan("CMD-CANCEL")
                screen.wait_for(lambda v: v["order"] is None)
                scan(order["order_no"])
                screen.wait_for(lambda v, no=order["order_no"]: _packing(v, no))
            code = order["lines"][k // QTY]["barcode"]
            screen.drain()
            start = scan(code)
            arrived = screen.wait_for(lambda v, want=k + 1: verified(v) == want)
            fact = ItemVerified(
                order_no="BASE", parcel_no=1, sku="SKU-1", barcode=code, qty=1, operator="0042"
            )
            t0 = time.perf_counter()
            baseline.record(fact)
            t1 = time.perf_counter()
            if n >= args.warmup:
                to_screen.append((arrived - start) * 1000)
                record.append((t1 - t0) * 1000)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        baseline.close()
        os.close(master)
        os.close(slave)

    recorded = subprocess.run(
        [*packline, "edge", "events", "--config", str(config), "--type", "item.verified", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.count("\n")
    expected = args.warmup + args.scans
    print(
        f"{args.scans} item scans measured ({args.warmup} warm-up), {recorded} recorded, "
        f"{args.waiting} more orders waiting"
    )
    print("                          p50       p90       p99     (ms)")
    for name, values in (("scan → screen (SSE)", to_screen), ("store.record alone", record)):
        print(
            f"{name:<22} {statistics.median(values):8.2f}  {pct(values, 0.9):8.2f}  "
            f"{pct(values, 0.99):8.2f}"
        )
    ratio = pct(to_screen, 0.99) / pct(record, 0.99)
    print(f"p99 ratio screen / record: {ratio:.2f}×   (goal ≤ {GOAL_RATIO:g}×)")
    if recorded != expected:
        print(f"PROBLEM: {expected} item scans but {recorded} item.verified events")
        return 1
    return 0 if ratio <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
