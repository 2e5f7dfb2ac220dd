"""docs/broker.md stays true: its commands and settings, run as written (with the
example paths and host replaced by the test's own, and a free port)."""

from __future__ import annotations

import re
import shlex
import shutil
import tomllib
from pathlib import Path

import pytest

from central.settings import CentralSettings
from edge.settings import StationSettings
from packline.devbroker import free_port
from packline.settings import load_settings
from tests.support.cli import run_packline
from tests.support.siteconfig import (
    Client,
    ConfiguredBroker,
    make_pki,
    password,
    secret,
)

pytestmark = pytest.mark.mqtt

DOC = (Path(__file__).resolve().parents[2] / "docs" / "broker.md").read_text()


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", DOC, flags=re.S)


def commands(block: str) -> list[str]:
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_documented_commands_write_run_and_rotate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    out = tmp_path / "broker"
    port = free_port()
    swaps = {
        "/etc/packline/broker": str(out),
        "/etc/packline/tls/broker.pem": str(pki["cert"]),
        "/etc/packline/tls/broker.key": str(pki["key"]),
        "/etc/packline/tls/ca.pem": str(pki["ca"]),
        "broker.wh1.lan": "127.0.0.1",
    }

    def swap(text: str) -> str:
        for doc, here in swaps.items():
            text = text.replace(doc, here)
        return text

    write, rotate = blocks("sh")
    config, run = commands(write)
    broker = None
    try:
        args = shlex.split(swap(config))
        assert args[:3] == ["packline", "broker", "config"]
        done = run_packline(*args[1:], "--port", str(port), "--bind", "127.0.0.1")
        assert done.returncode == 0, done.stderr
        assert shlex.split(swap(run)) == ["mosquitto", "-c", str(out / "mosquitto.conf")]
        broker = ConfiguredBroker(out=out, port=port).start()
        names = ["central", "bench-01", "bench-02", "bench-03", "ops-desk"]
        for name in names:
            Client(secret(out, name), name=name).connected().close()
        before = {name: password(out, name) for name in names}
        old_bench_02 = secret(out, "bench-02")

        config_again, hup = commands(rotate)
        args = shlex.split(swap(config_again))
        assert args[-2:] == ["--rotate", "bench-02"]
        done = run_packline(*args[1:], "--port", str(port), "--bind", "127.0.0.1")
        assert done.returncode == 0, done.stderr
        # Never pidof here: that would find the machine's own broker too.
        assert hup == 'kill -HUP "$(pidof mosquitto)"'
        broker.reload()
        after = {name: password(out, name) for name in names}
        assert [n for n in names if after[n] != before[n]] == ["bench-02"]
        refused = Client(old_bench_02, name="old")
        assert refused.connack().value == 0x87
        refused.close()
        Client(secret(out, "bench-02"), name="new").connected().close()
    finally:
        if broker is not None:
            broker.stop()

    # The settings shown, with the files where the comments put them.
    station_toml, central_toml = blocks("toml")
    etc = tmp_path / "etc-packline"
    etc.mkdir()
    shutil.copy(out / "secrets" / "bench-01.url", etc / "bench-01.url")
    shutil.copy(out / "secrets" / "ca.pem", etc / "ca.pem")
    station_file = tmp_path / "station.toml"
    station_file.write_text(station_toml.replace("/etc/packline/", f"{etc}/"))
    assert tomllib.loads(station_file.read_text())["mqtt_url_file"] == f"{etc}/bench-01.url"
    station = load_settings(StationSettings, station_file)
    bench_01 = password(out, "bench-01")
    assert station.mqtt_url == f"mqtts://bench-01:{bench_01}@127.0.0.1:{port}?ca={etc}/ca.pem"
    central_file = tmp_path / "central.toml"
    central_file.write_text(swap(central_toml))
    central = load_settings(CentralSettings, central_file)
    assert central.mqtt_url == secret(out, "central")


def test_documented_option_table_is_the_commands_options() -> None:
    first_cells = re.findall(r"^\| (`--.*?) \|", DOC, flags=re.M)
    documented = {opt for cell in first_cells for opt in re.findall(r"--[a-z-]+", cell)}
    done = run_packline("broker", "config", "--help")
    assert done.returncode == 0
    offered = set(re.findall(r"(--[a-z][a-z-]+)", done.stdout)) - {"--help"}
    assert documented == offered
