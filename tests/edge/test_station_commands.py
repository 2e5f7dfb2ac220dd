"""The station's commands as a person runs them: check, orders import, events, run --site,
and the command sheet."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp

from drivers.fakes.ql import FakeQLPrinter
from drivers.fakes.scanner import ScriptedScanner
from edge.bench.sheet import sheet_entries
from edge.factory import build_agent
from edge.settings import StationSettings
from packline.devbroker import MosquittoBroker, free_port
from packline.samples import packing_scans, sample_orders
from packline.settings import load_settings
from tests.support.cli import REPO, run_packline
from tests.support.waiting import wait_for

EXAMPLES = REPO / "docs" / "examples"


def write_config(path: Path, **settings: object) -> Path:
    path.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items()))
    return path


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeQLPrinter]:
    with FakeQLPrinter(out_dir=tmp_path / "fake-ql", label="62") as printer:
        yield printer


@pytest.mark.mqtt
def test_edge_check_says_ready_when_everything_answers(
    tmp_path: Path, broker: MosquittoBroker, fake: FakeQLPrinter
) -> None:
    config = write_config(
        tmp_path / "station.toml",
        station="bench-c",
        data_dir=str(tmp_path / "data"),
        mqtt_url=broker.url,
        scanner="script:?scan=X&interval=0",
        printer=fake.url,
        kiosk_listen=f"127.0.0.1:{free_port()}",
    )
    done = run_packline("edge", "check", "--config", config)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "station bench-c (site demo)"
    assert lines[-1] == "ready to pack"
    assert any(line.startswith("ok      label: 62 ") and "300 dpi" in line for line in lines)
    assert any(line.startswith("ok      broker:") for line in lines)
    assert any(line.startswith("ok      media: 62 labels loaded") for line in lines)
    assert any(line.startswith("ok      kiosk: http://127.0.0.1:") for line in lines)


def test_edge_check_names_what_to_fix(tmp_path: Path, fake: FakeQLPrinter) -> None:
    fake.set(media="29")  # the wrong roll
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path / "station.toml",
            station="bench-c",
            data_dir=str(tmp_path / "data"),
            mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
            scanner=f"serial://{tmp_path}/no-such-tty",
            printer=fake.url,
            kiosk_listen=f"127.0.0.1:{port}",
        )
        done = run_packline("edge", "check", "--config", config, "--timeout", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "PROBLEM media: The printer has 29 mm endless labels loaded" in out
    assert "PROBLEM scanner:" in out and "gone" in out and "plug the scanner in" in out
    assert "PROBLEM broker:" in out and "works offline" in out
    assert f"PROBLEM kiosk: http://127.0.0.1:{port}/" in out
    assert "fix: the port is in use (another packline edge run on this bench?)" in out
    assert out.splitlines()[-1] == "4 to fix"
    assert "Traceback" not in done.stderr


def test_orders_import_then_events_tell_what_happened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = write_config(
        tmp_path / "station.toml",
        station="bench-e",
        data_dir=str(data),
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
        scanner="script:?scan=X&interval=0",
        printer=f"file://{tmp_path / 'printed'}",
        label_size="62",
    )
    done = run_packline("edge", "orders", "import", EXAMPLES / "order.json", "--config", config)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 orders loaded into bench-e\n"
    csv = run_packline("edge", "orders", "import", EXAMPLES / "orders.csv", "--config", config)
    assert csv.returncode == 0 and "loaded into bench-e" in csv.stdout, csv.stderr
    again = run_packline("edge", "orders", "import", EXAMPLES / "order.json", "--config", config)
    assert "0 orders loaded" in again.stdout and "already held" in again.stdout

    # Pack the imported order at this bench (no central at all).
    order = json.loads((EXAMPLES / "order.json").read_text(encoding="utf-8"))
    settings = load_settings(StationSettings, config)
    agent = build_agent(settings, version="t", scanner=ScriptedScanner(scans=[]))
    try:
        for code in ["OP-7", *packing_scans(order), "NOT-AN-ORDER"]:
            agent.handle_scan(code)
    finally:
        agent.close()

    listed = run_packline("edge", "events", "--config", config)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "operator.login" in lines[0] and "operator=7" in lines[0]
    assert "scan.rejected" in lines[-1] and "code=unknown_code" in lines[-1]  # newest last
    assert any("shipment.shipped" in line and "contents=" in line for line in lines)
    assert all("(not yet at central)" in line for line in lines)

    labels = run_packline("edge", "events", "--config", config, "--type", "label.", "--json")
    rows = [json.loads(line) for line in labels.stdout.splitlines()]
    assert rows and {r["type"] for r in rows} == {"label.printed"}
    assert {r["payload"]["kind"] for r in rows} == {"packing_list", "waybill"}
    assert all(r["sent"] is False and r["station"] == "bench-e" for r in rows)
    last = run_packline("edge", "events", "--config", config, "--last", "1", "--json")
    assert json.loads(last.stdout)["type"] == "scan.rejected"


def test_edge_run_takes_the_site_from_its_option(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "station.toml",
        station="bench-s",
        data_dir=str(tmp_path / "data"),
        mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
        scanner="script:?scan=X&interval=5",
        printer=f"file://{tmp_path / 'printed'}",
        kiosk_listen=f"127.0.0.1:{free_port()}",
    )
    log = tmp_path / "edge.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "packline",
                "edge",
                "run",
                "--config",
                str(config),
                "--site",
                "wh9",
            ],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for(lambda: "station bench-s (site wh9" in log.read_text(), what="the agent's start")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    # The label and resolution it picked are said at start.
    assert "label 100x180 at 300 dpi" in log.read_text()


@pytest.mark.parametrize("suffix", [".pdf", ".png"])
def test_the_command_sheet_scans_back_to_every_command(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"commands{suffix}"
    done = run_packline("label", "commands", "--out", out, "--station", "bench-01")
    assert done.returncode == 0, done.stderr
    if suffix == ".pdf":
        import pypdfium2

        pdf = pypdfium2.PdfDocument(out)
        images = [page.render(scale=2).to_pil().convert("L") for page in pdf]
        pdf.close()
    else:
        from PIL import Image

        files = [Path(line.removeprefix("wrote ")) for line in done.stdout.splitlines()]
        images = [Image.open(path).convert("L") for path in files]
    found = {r.text for image in images for r in zxingcpp.read_barcodes(image)}
    assert found == {code for code, _, _ in sheet_entries()}
    assert "CMD-OK" in found and "CMD-EXCEPTION-STOCKOUT" in found


def test_the_scanner_unplugged_mid_order_is_a_state_not_a_crash(tmp_path: Path) -> None:
    import os
    import threading

    master, slave = os.openpty()
    tty = os.ttyname(slave)
    settings = StationSettings.model_validate(
        {
            "station": "bench-u",
            "data_dir": tmp_path / "data",
            "mqtt_url": f"mqtt://127.0.0.1:{free_port()}",
            "scanner": f"serial://{tty}?baud=9600&terminator=cr&reconnect_max=0.2",
            "printer": f"file://{tmp_path / 'printed'}",
            "print_packing_list": False,
        }
    )
    from sync.messages import OrdersMessage
    from sync.order import validate_order

    agent = build_agent(settings, version="t")
    order = sample_orders(1, prefix="UP")[0]
    agent.store.apply_orders(OrdersMessage(orders=[validate_order(order)], cursor=1))
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: agent.devices.scanner_state == "ready", what="the scanner")
        for code in ["OP-1", order["order_no"], order["lines"][0]["barcode"]]:
            os.write(master, code.encode() + b"\r")
        wait_for(lambda: agent.view().order is not None, what="the order in progress")
        before = agent.changes.version
        os.close(master)  # the cable is pulled
        os.close(slave)
        wait_for(lambda: agent.view().devices.scanner == "gone", what="the scanner gone")
        # The screen is told (the state is set just before the change is counted).
        wait_for(lambda: agent.changes.version > before, what="the screen told")
        gone = [
            e.payload
            for e in agent.store.events(type="device.state")
            if e.payload["device"] == "scanner"
        ]
        assert gone and gone[-1]["state"] == "gone"
        view = agent.view()
        assert view.order is not None and view.order.items_verified == 1  # nothing lost
        assert runner.is_alive()
    finally:
        agent.stop()
        runner.join(timeout=30)
