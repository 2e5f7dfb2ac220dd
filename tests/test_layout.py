"""The packages import from this repository, and the CLI answers."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from packline import __version__

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["packline", "edge", "drivers", "sync", "central", "web"])
def test_package_imports_from_this_repo(name: str) -> None:
    module = importlib.import_module(name)
    origin = Path(module.__file__ or "").resolve()
    # A stray distribution with the same top-level name would live in site-packages.
    assert origin.is_relative_to(REPO), f"{name} imported from {origin}, not {REPO}"


def _packline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "packline", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    out = _packline("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"packline {__version__}"


def test_help_lists_every_group() -> None:
    out = _packline("--help")
    assert out.returncode == 0
    for group in ("edge", "central", "label", "printer", "scanner", "demo"):
        assert group in out.stdout


def test_a_persons_mistake_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = _packline("edge", "run", "--config", str(tmp_path / "missing.toml"))
    assert out.returncode == 2
    assert out.stderr == f"packline: error: config file not found: {tmp_path / 'missing.toml'}\n"
    bad = tmp_path / "bad.toml"
    bad.write_text('station = "has space"\n')
    out = _packline("edge", "status", "--config", str(bad))
    assert out.returncode == 2
    assert out.stderr.startswith("packline: error: invalid setting station")
    assert out.stderr.count("\n") == 1
    out = _packline("scanner", "listen", "nosuch://device")
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_command_exit_codes_pass_through(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))  # an SNMP port where nothing answers
        port = udp.getsockname()[1]
        out = _packline("printer", "status", f"ql+tcp://127.0.0.1:1?snmp_port={port}&timeout=0.5")
    assert out.returncode == 1, out.stderr  # not ready: offline


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--mqtt-url", "http://central:1883", "mqtt_url"),
        ("--scanner", "usb-hid://scanner", "usb-hid"),
        ("--printer", "lpd://printer", "lpd"),
    ],
)
def test_edge_run_refuses_a_bad_url_in_one_line(
    tmp_path: Path, option: str, value: str, words: str
) -> None:
    out = _packline("edge", "run", "--station", "b1", "--data-dir", str(tmp_path), option, value)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("packline: error:") and words in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
