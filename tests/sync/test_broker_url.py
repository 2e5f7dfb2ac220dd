"""Broker URLs: the ``ca`` option, URL files, and a password never shown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from central.settings import CentralSettings
from edge.settings import StationSettings
from packline.settings import load_settings
from sync.errors import UserError
from sync.mqtt import BrokerURL, check_broker_url, hide_password, parse_mqtt_url, read_url_file

SECRET = "s3cret-Pa55"


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    """A real CA certificate (openssl), for ``?ca=``."""
    from tests.support.siteconfig import make_pki

    return make_pki(tmp_path / "pki")["ca"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"mqtt://bench-01:{SECRET}@h:1883", "mqtt://bench-01:***@h:1883"),
        (f"mqtts://u:{SECRET}@h?ca=/x", "mqtts://u:***@h?ca=/x"),
        ("mqtt://u:pa/ss@word@h", "mqtt://u:***@h"),  # not even a valid URL
        ("mqtt://u@h", "mqtt://u@h"),
        ("mqtt://h:1883", "mqtt://h:1883"),
        ("not a url", "not a url"),
    ],
)
def test_hide_password(url: str, shown: str) -> None:
    assert hide_password(url) == shown


def test_str_of_a_broker_url_names_the_user_not_the_password() -> None:
    broker = parse_mqtt_url(f"mqtts://bench-01:{SECRET}@broker.lan")
    assert str(broker) == "mqtts://bench-01@broker.lan:8883"
    assert broker.password == SECRET
    assert SECRET not in repr(BrokerURL(host="h", port=1)) + str(broker)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"http://u:{SECRET}@h", "must start with mqtt://"),
        (f"mqtt://u:{SECRET}@h:port", "bad port"),
        (f"mqtt://u:{SECRET}@h?ca=/x.pem", "ca= needs mqtts://"),
        (f"mqtts://u:{SECRET}@h?ca=", "names no file"),
        (f"mqtts://u:{SECRET}@h?verify=no", "unknown option 'verify'"),
        (f"mqtts://u:{SECRET}@h?ca=/nonexistent/ca.pem", "cannot read the broker's CA file"),
        (f"mqtts://u:{SECRET}@h?ca=/etc/hostname", "holds no PEM certificate"),
    ],
)
def test_bad_urls_are_refused_without_the_password(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as err:
        check_broker_url(url)
    assert SECRET not in str(err.value)


def test_ca_option(ca: Path) -> None:
    broker = check_broker_url(f"mqtts://u:p@h:8883?ca={ca}")
    assert broker.ca_file == str(ca) and broker.tls


def test_url_file_one_line_relative_ca_beside_it(tmp_path: Path, ca: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "ca.pem").write_bytes(ca.read_bytes())
    url_file = folder / "bench.url"
    url_file.write_text(f"\n  mqtts://bench:{SECRET}@h:8883?ca=ca.pem  \n")
    assert read_url_file(url_file) == f"mqtts://bench:{SECRET}@h:8883?ca={folder}/ca.pem"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty: it must hold one URL"),
        (b"mqtt://a@h\nmqtt://b@h\n", "holds 2 lines"),
        (f"htp://u:{SECRET}@h".encode(), "must start with mqtt://"),
        (b"\xff\xfe", "is not text"),
    ],
)
def test_url_file_mistakes_name_the_file_not_the_password(
    tmp_path: Path, content: bytes, words: str
) -> None:
    url_file = tmp_path / "bench.url"
    url_file.write_bytes(content)
    with pytest.raises(ValueError, match=words) as err:
        read_url_file(url_file)
    assert str(url_file) in str(err.value) and SECRET not in str(err.value)


def test_unreadable_url_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read the broker URL file .*: No such file"):
        read_url_file(tmp_path / "missing.url")
    url_file = tmp_path / "locked.url"
    url_file.write_text("mqtt://h\n")
    url_file.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        with pytest.raises(ValueError, match="Permission denied"):
            read_url_file(url_file)


@pytest.mark.parametrize("settings_class", [StationSettings, CentralSettings])
def test_settings_take_the_url_from_a_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings_class: type[StationSettings] | type[CentralSettings],
) -> None:
    url_file = tmp_path / "client.url"
    url_file.write_text(f"mqtt://bench-01:{SECRET}@broker.lan:1883\n")
    toml = tmp_path / "settings.toml"
    station = 'station = "bench-01"\n' if settings_class is StationSettings else ""
    toml.write_text(f'{station}mqtt_url_file = "{url_file}"\n')
    loaded = load_settings(settings_class, toml)
    assert loaded.mqtt_url == f"mqtt://bench-01:{SECRET}@broker.lan:1883"
    assert loaded.mqtt_url_file == url_file

    # Both set: refused in one line; the same URL in both is no conflict.
    with pytest.raises(UserError, match="set mqtt_url or mqtt_url_file, not both") as err:
        load_settings(settings_class, toml, mqtt_url=f"mqtt://other:{SECRET}x@h")
    assert SECRET not in str(err.value)
    monkeypatch.setenv("PACKLINE_MQTT_URL", "mqtt://h:1883")
    with pytest.raises(UserError, match="not both"):
        load_settings(settings_class, toml)
    monkeypatch.delenv("PACKLINE_MQTT_URL")

    # From the environment too.
    monkeypatch.setenv("PACKLINE_MQTT_URL_FILE", str(url_file))
    toml.write_text(station)
    assert load_settings(settings_class, toml).mqtt_url.startswith("mqtt://bench-01:")


@pytest.mark.parametrize("settings_class", [StationSettings, CentralSettings])
def test_settings_errors_never_show_the_password(
    tmp_path: Path, settings_class: type[StationSettings] | type[CentralSettings]
) -> None:
    station = {"station": "b1"} if settings_class is StationSettings else {}
    missing = tmp_path / "missing.url"
    with pytest.raises(UserError) as err:
        load_settings(settings_class, None, mqtt_url_file=str(missing), **station)
    assert str(err.value) == (
        f"invalid setting mqtt_url_file: cannot read the broker URL file {missing}: "
        "No such file or directory"
    )
    bad = tmp_path / "bad.url"
    bad.write_text(f"mqtt://u:{SECRET}@h:99999x\n")
    with pytest.raises(UserError) as err:
        load_settings(settings_class, None, mqtt_url_file=str(bad), **station)
    assert str(bad) in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(UserError) as err:
        load_settings(settings_class, None, mqtt_url=f"mqtt://u:{SECRET}@h:x", **station)
    assert "invalid setting mqtt_url" in str(err.value) and SECRET not in str(err.value)


@pytest.mark.parametrize("command", [["edge", "status"], ["edge", "run"]])
def test_the_console_script_says_it_in_one_line(tmp_path: Path, command: list[str]) -> None:
    from tests.support.cli import run_packline

    url_file = tmp_path / "bench.url"
    url_file.write_text(f"mqtt://bench-01:{SECRET}@h:1883\n")
    toml = tmp_path / "station.toml"
    toml.write_text(
        f'station = "bench-01"\ndata_dir = "{tmp_path}"\nmqtt_url_file = "{url_file}"\n'
        f'mqtt_url = "mqtt://bench-01:{SECRET}@other:1883"\n'
    )
    done = run_packline(*command, "--config", toml)
    assert done.returncode == 2
    assert done.stderr == (
        f"packline: error: invalid settings (from {toml} or the environment): "
        "set mqtt_url or mqtt_url_file, not both\n"
    )
    toml.write_text(f'station = "bench-01"\nmqtt_url_file = "{tmp_path}/gone.url"\n')
    done = run_packline(*command, "--config", toml)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert f"cannot read the broker URL file {tmp_path}/gone.url" in done.stderr
    assert SECRET not in done.stdout + done.stderr
