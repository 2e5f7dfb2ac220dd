"""The edge agent's memory: RSS idle, and with 10k events waiting for central.

Two real ``packline edge run`` processes on the same machine and settings: one with
an empty outbox, one whose store holds 10 000 events central has not acknowledged
(a shift's worth of records while central is away). Both talk to a private Mosquitto
(the uplink publishes and re-sends batches; no central answers). RSS is read from
/proc after the agent settled and while it pumps. Goals: ≤ 80 MB idle, ≤ 1.2× that
with the backlog. Not a test.

    .venv/bin/python bench/agent_memory.py [--backlog 10000] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge.clock import SystemClock
from edge.store import StationStore
from packline.devbroker import MosquittoBroker, free_port
from packline.samples import sample_orders
from sync.events import ScanRejected, ShipmentShipped
from sync.messages import OrdersMessage
from sync.order import validate_order

GOAL_IDLE_MB = 80.0
GOAL_RATIO = 1.2


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def prepare(data: Path, *, station: str, backlog: int) -> None:
    store = StationStore(data / f"{station}.sqlite", station=station, clock=SystemClock())
    orders = [validate_order(o) for o in sample_orders(600, prefix="MEM")]
    store.apply_orders(OrdersMessage(orders=orders, cursor=600))
    batch = []
    for i in range(backlog):
        if i % 2:
            fact = ShipmentShipped(
                order_no=f"MEM{i:06d}",
                tracking_no=f"SF{i:012d}",
                carrier="SF Express",
                parcel_no=1,
                parcel_count=1,
                operator="0042",
                print_job_id=f"MEM{i:06d}-r1-waybill-1",
                print_verified=True,
            )
        else:
            fact = ScanRejected(text=f"X{i}", reason="unknown order", code="unknown_code")
        batch.append((fact, None))
        if len(batch) == 500:
            store.record_all(batch)
            batch = []
    if batch:
        store.record_all(batch)
    assert store.backlog() == backlog
    store.close()


def run_agent(data: Path, *, station: str, mqtt_url: str, seconds: float) -> float:
    master, slave = os.openpty()
    tty = os.ttyname(slave)
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "packline", "edge", "run",
            "--station", station, "--data-dir", str(data), "--mqtt-url", mqtt_url,
            "--scanner", f"serial://{tty}?baud=9600", "--printer", f"file://{data / 'printed'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        # The packer's screen is served (and counted) as on a bench, on a free port.
        env={**os.environ, "PACKLINE_KIOSK_LISTEN": f"127.0.0.1:{free_port()}"},
    )  # fmt: skip
    try:
        time.sleep(2.0)  # imports, store open, first status and batches
        peak = 0.0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.2)
        return peak
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.close(master)
        os.close(slave)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="packline-mem-") as tmp:
        root = Path(tmp)
        with MosquittoBroker(workdir=root / "mosquitto") as broker:
            idle_dir, busy_dir = root / "idle", root / "busy"
            prepare(idle_dir, station="mem-idle", backlog=0)
            prepare(busy_dir, station="mem-busy", backlog=args.backlog)
            idle = run_agent(
                idle_dir, station="mem-idle", mqtt_url=broker.url, seconds=args.seconds
            )
            busy = run_agent(
                busy_dir, station="mem-busy", mqtt_url=broker.url, seconds=args.seconds
            )
    ratio = busy / idle
    print(
        f"agent RSS idle (600 orders, empty outbox): {idle:6.1f} MB  (goal ≤ {GOAL_IDLE_MB:g} MB)"
    )
    print(f"agent RSS with {args.backlog} events unsent:    {busy:6.1f} MB")
    print(f"ratio backlog / idle:                      {ratio:6.2f}×   (goal ≤ {GOAL_RATIO:g}×)")
    return 0 if idle <= GOAL_IDLE_MB and ratio <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
