"""``packline demo`` brings up the whole system, shows three stations shipping, stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from packline.devbroker import free_port
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]


def _get(url: str, token: str = "") -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "demo.log").read_text(errors="replace")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_demo_runs_three_shipping_stations_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "packline",
            "demo",
            "--http-port",
            str(port),
            "--interval",
            "0.5",
            "--orders",
            "60",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(base + "/healthz"), what="/healthz", timeout=90)
        # The demo's admin has an API token for scripts (docs/web.md).
        token = (tmp_path / "demo" / "api-token").read_text().strip()
        assert _get(base + "/api/stations") is None  # not without it

        def shipments() -> list[dict[str, Any]]:
            data = _get(base + "/api/shipments?limit=200", token) or []
            return list(data["shipments"] if isinstance(data, dict) else data)

        def shipping_stations() -> set[str]:
            return {r["station"] for r in shipments()}

        stations = wait_for(
            lambda: len(shipping_stations()) == 3 and shipping_stations(),
            what="three stations shipping",
            timeout=90,
        )
        assert stations == {"bench-01", "bench-02", "bench-03"}
        # Each simulated packer logged in with a badge and verified the items.
        assert {r["operator"] for r in shipments()} <= {"0100", "0200", "0300"}
        listed = _get(base + "/api/stations", token)
        listed = listed["stations"] if isinstance(listed, dict) else listed
        assert {s["station"] for s in listed if s["online"]} == stations
        # Each bench serves its packer's screen where the demo says.
        screens = re.findall(r"(bench-\d+) packer's screen (http://\S+)", log_text(tmp_path))
        assert {name for name, _ in screens} == stations
        for name, url in screens:
            view = _get(url + "api/view")
            assert view is not None and view["station"] == name and view["operator"]
        children = _children(proc.pid)
        assert len(children) >= 5  # broker, central and three stations
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        log.close()
    assert code in (0, 130), (tmp_path / "demo.log").read_text()[-3000:]
    for pid in children:
        # Every process the demo started is gone (not even a zombie of ours).
        assert (
            not os.path.exists(f"/proc/{pid}")
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
    assert "Traceback" not in (tmp_path / "demo.log").read_text()
