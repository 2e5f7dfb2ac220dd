"""``packline demo`` brings up the whole system, shows three stations shipping, stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
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


PACKLINE = str(Path(".venv/bin/packline").resolve())
PART = re.compile(r"^(broker|central|bench-0\d|demo|day) +\| ")


def _folder(text: str) -> Path:
    found = re.search(r"state in (\S+)\. ", text)
    assert found, text[-2000:]
    return Path(found.group(1))


def test_the_demo_plays_a_day_that_reaches_central_and_cleans_up() -> None:
    port = free_port()
    done = subprocess.run(
        [PACKLINE, "demo", "--http-port", str(port), "--speed", "600", "--until", "14:00",
         "--interval", "0.3"],
        capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "Traceback" not in out
    # What central recorded of the day (read from its database at 14:00).
    day = [line.split("| ", 1)[1] for line in done.stdout.splitlines() if line.startswith("day ")]
    shipped = re.match(r"shipped: (\d+) parcels of (\d+) orders \(bench-01 (\d+), "
                       r"bench-02 (\d+), bench-03 (\d+)\)", day[0])  # fmt: skip
    assert shipped and all(int(n) > 0 for n in shipped.groups()), day
    assert "split parcel: SPLIT-0001 shipped in 2 parcels" in day
    assert "presale: PRE-0001 shipped at bench-02" in day
    # Out of labels (the QL's status over SNMP, maybe a failed job first), then refilled.
    assert any(re.fullmatch(r"printer: bench-01 ready → (.* → )?no media → ready", d) for d in day)
    assert "network: bench-03 online true → false → true" in day
    escalated = [d for d in day if d.startswith("deadline: exception #")]
    assert escalated and int(escalated[0].rsplit(" ", 1)[1]) >= 2, day
    assert "return: inspected at bench-02 (restock)" in day
    # The day's story as the benches told it.
    assert re.search(r"^bench-02 \| .*ALARM +Wrong item: 6900000000000", out, re.M)
    assert re.search(r"^bench-01 \| .*REFUSED .*out of labels", out, re.M)
    assert re.search(r"^bench-03 \| .*connected to the broker.*holding [1-9]\d* records", out,
                     re.M)  # fmt: skip
    # Every line names its part; a scanner's state is said once, not by two libraries.
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    banner = re.compile(r"^(packline demo is running|  bench-0\d packer's screen|broker mqtt)")
    assert all(PART.match(line) or banner.match(line) for line in lines), [
        line for line in lines if not (PART.match(line) or banner.match(line))
    ][:5]
    for bench in ("bench-01", "bench-02", "bench-03"):
        assert len(re.findall(rf"^{bench} \| .*scanner ready", out, re.M)) == 1
    assert not _folder(out).exists()


@pytest.mark.parametrize("option", ["--http-port", "--mqtt-port"])
def test_a_taken_port_is_one_line_and_exit_2(option: str, tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        args = [option, str(port)]
        if option == "--mqtt-port":
            args += ["--http-port", str(free_port())]
        done = subprocess.run(
            [PACKLINE, "demo", *args, "--workdir", str(tmp_path / "w")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    what = "the status page" if option == "--http-port" else "the demo's broker"
    assert done.stderr.splitlines() == [
        f"packline: error: cannot run {what} on 127.0.0.1:{port}: Address already in use; "
        f"choose another {option}"
    ]
    assert done.stdout == ""
    assert not (tmp_path / "w").exists()  # checked before anything started


def test_a_part_that_dies_is_named_and_everything_stops() -> None:
    proc = subprocess.Popen(
        [PACKLINE, "demo", "--http-port", str(free_port()), "--speed", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("broker mqtt"):
                break
        text = "".join(seen)
        pids = dict(re.findall(r"  (bench-0\d) packer's screen \S+ \(pid (\d+)\)", text))
        assert set(pids) == {"bench-01", "bench-02", "bench-03"}, text[-3000:]
        children = _children(proc.pid)
        os.kill(int(pids["bench-02"]), signal.SIGKILL)
        rest = proc.stdout.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 1
    assert "packline demo: bench-02 stopped unexpectedly (exit code -9); stopping the demo" in rest
    assert "Traceback" not in rest
    assert not _folder(text).exists()
    for pid in children:
        assert (
            not os.path.exists(f"/proc/{pid}")
            or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        )
