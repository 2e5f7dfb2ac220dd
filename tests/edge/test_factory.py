"""build_agent: the station's parts come from its settings and are handed to the agent."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from drivers.errors import BadDeviceURL
from drivers.fakes.scanner import ScriptedScanner
from edge.check import CannotWork
from edge.factory import build_agent
from edge.settings import StationSettings

REPO = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, **changes: object) -> StationSettings:
    return StationSettings.model_validate(
        {
            "station": "bench-f",
            "site": "factory",
            "data_dir": tmp_path / "station",
            "mqtt_url": "mqtt://127.0.0.1:1",
            "scanner": "script:?scan=X1&interval=0",
            "printer": f"file://{tmp_path / 'printed'}",
            "label_size": "62",
            "health_interval": 7.5,
            **changes,
        }
    )


def test_the_parts_follow_the_settings(tmp_path: Path) -> None:
    config = settings(tmp_path, operator="op-3")
    agent = build_agent(config, version="9.9-test")
    try:
        assert agent.store.path == config.db_path and agent.store.station == "bench-f"
        assert agent.printer.url.startswith("file://")
        assert agent.devices.interval == 7.5 and agent.devices.printer is agent.printer
        assert agent.rules.default_operator == "op-3" and agent.label.key == "62"
        assert agent.label_dpi == 300  # the file printer's default resolution
        uplink = agent.uplink
        # One client id per station store: two benches given one name do not throw
        # each other off the broker.
        instance = agent.store.instance_id
        assert uplink.session.client_id == f"packline-station-factory-bench-f-{instance[:8]}"
        assert uplink.resend_after == config.resend_after
        status = uplink.status()  # the version handed in, not read from the shell
        assert (status.station, status.version, status.printer) == (
            "bench-f",
            "9.9-test",
            "unknown",
        )
        assert not uplink.session.connected  # nothing runs until run()
    finally:
        agent.close()


def test_a_scanner_handed_in_replaces_the_configured_one(tmp_path: Path) -> None:
    scripted = ScriptedScanner(scans=["X"])
    agent = build_agent(settings(tmp_path, scanner="nosuch://x"), version="t", scanner=scripted)
    try:
        assert agent.scanner is scripted and agent.devices.scanner is scripted
    finally:
        agent.close()


def test_a_bad_device_url_raises_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(BadDeviceURL, match="lpd"):
        build_agent(settings(tmp_path, printer="lpd://printer"), version="t")
    with pytest.raises(BadDeviceURL, match="usb-hid"):
        build_agent(settings(tmp_path, scanner="usb-hid://scanner"), version="t")
    # The store was closed again: another agent opens it at once.
    build_agent(settings(tmp_path), version="t").close()


def test_station_modules_do_not_reach_into_the_shell() -> None:
    # The agent takes its version as a parameter; the station's command line lives in
    # the shell (packline/commands/edge.py). tests/test_layout.py checks every package.
    for path in sorted((REPO / "edge").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any(m == "packline" or m.startswith("packline.") for m in imported), path.name


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        # A QL set up for 62 mm labels cannot print the default 100x180 waybill.
        ({"printer": "ql+tcp://127.0.0.1:9?label=62", "label_size": "100x180"}, "label_size"),
        # A 300-dpi QL fed 203-dpi labels prints them two thirds the size.
        ({"printer": "ql+tcp://127.0.0.1:9?label=62", "label_dpi": 203}, "68%"),
        ({"printer": "zpl+tcp://127.0.0.1:9", "label_dpi": 300}, "203 dpi"),
    ],
)
def test_a_label_the_printer_can_never_print_is_refused_at_start(
    tmp_path: Path, changes: dict[str, object], words: str
) -> None:
    with pytest.raises(CannotWork, match=words):
        build_agent(settings(tmp_path, **changes), version="t")
    build_agent(settings(tmp_path), version="t").close()  # and nothing was left open


def test_label_and_resolution_default_to_the_printers(tmp_path: Path) -> None:
    ql = build_agent(
        settings(tmp_path, printer="ql+tcp://127.0.0.1:9?label=62x100", label_size=None),
        version="t",
    )
    try:
        assert (ql.label.key, ql.label_dpi) == ("62x100", 300)
    finally:
        ql.close()
    zpl = build_agent(
        settings(tmp_path, printer="zpl+tcp://127.0.0.1:9", label_size=None), version="t"
    )
    try:
        assert (zpl.label.key, zpl.label_dpi) == ("100x180", 203)
    finally:
        zpl.close()
