"""``packline broker config``: the files it writes, kept and rotated passwords, the
mistakes it refuses, and a running broker picking up a rotation."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.brokerconf import Clients, acl_text
from packline.devbroker import free_port
from sync import topics
from tests.support.cli import run_packline
from tests.support.siteconfig import (
    Client,
    ConfiguredBroker,
    broker_config,
    password,
    secret,
)

SITE = "wh1"


def config(out: Path, *extra: str, stations: str = "a,b", port: int = 18830) -> str:
    done = broker_config(
        *("--site", SITE, "--stations", stations, "--out", str(out)),
        *("--host", "127.0.0.1", "--port", str(port), "--bind", "127.0.0.1", *extra),
    )
    return done.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_writes_config_passwd_acl_and_a_private_url_per_client(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    stdout = config(out, "--supervisors", "ops,desk-2")
    names = ["central", "a", "b", "ops", "desk-2"]

    conf = (out / "mosquitto.conf").read_text()
    for line in (
        "allow_anonymous false",
        f"password_file {out}/passwd",
        f"acl_file {out}/acl",
        "listener 18830 127.0.0.1",
        "persistence true",
        f"persistence_location {out}",
    ):
        assert line in conf.splitlines()
    assert "certfile" not in conf

    hashed = (out / "passwd").read_text().splitlines()
    assert [line.split(":")[0] for line in hashed] == names
    assert all(line.split(":", 1)[1].startswith("$7$") for line in hashed)  # PBKDF2-SHA512
    assert mode(out / "passwd") == 0o600
    assert (out / "acl").read_text() == acl_text(
        Clients(site=SITE, stations=("a", "b"), supervisors=("ops", "desk-2"))
    )

    assert mode(out / "secrets") == 0o700
    passwords = set()
    for name in names:
        url_file = out / "secrets" / f"{name}.url"
        assert mode(url_file) == 0o600
        url = url_file.read_text().strip()
        pw = password(out, name)
        assert url == f"mqtt://{name}:{pw}@127.0.0.1:18830"
        assert len(pw) >= 32
        passwords.add(pw)
        assert pw not in stdout  # the command never shows one
    assert len(passwords) == len(names)
    assert not list(out.glob(".*"))  # no plain-text leftovers
    assert f"run: mosquitto -c {out}/mosquitto.conf" in stdout


def test_running_again_keeps_passwords_and_rotate_changes_only_that_one(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    config(out)
    before = {n: password(out, n) for n in ("central", "a", "b")}

    stdout = config(out)
    assert {n: password(out, n) for n in before} == before
    assert "rotated" not in stdout and stdout.count("kept") == 3

    # Adding a station keeps the others' passwords.
    stdout = config(out, stations="a,b,c")
    assert {n: password(out, n) for n in before} == before
    assert password(out, "c") not in before.values()
    assert " c " in stdout and "new" in stdout

    stdout = config(out, "--rotate", "a", stations="a,b,c")
    after = {n: password(out, n) for n in before}
    assert after["a"] != before["a"]
    assert {n: after[n] for n in ("central", "b")} == {n: before[n] for n in ("central", "b")}
    assert "rotated" in stdout and before["a"] not in stdout and after["a"] not in stdout

    # A station left out loses its secrets file (and its passwd line).
    stdout = config(out, stations="a,b")
    assert not (out / "secrets" / "c.url").exists()
    assert "removed" in stdout
    assert [line.split(":")[0] for line in (out / "passwd").read_text().splitlines()] == [
        "central",
        "a",
        "b",
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--stations", "a,b/c"], "'b/c'"),
        (["--stations", "a,b+"], "'b+'"),
        (["--stations", "a,#"], "'#'"),
        (["--stations", "a,has space"], "'has space'"),
        (["--stations", "a,,b"], "station name is empty"),
        (["--stations", "a,b,a"], "'a' is named twice"),
        (["--stations", "a,central"], "'central' is taken"),
        (["--stations", "a", "--supervisors", "a"], "'a' is named twice"),
        (["--stations", "a", "--supervisors", "central"], "'central' is taken"),
        (["--stations", " "], "at least one station"),
        (["--stations", "a", "--site", "w/h"], "site name 'w/h'"),
        (["--stations", "a", "--rotate", "zz"], "--rotate zz: no such client"),
        (["--stations", "a", "--port", "70000"], "--port 70000 is out of range"),
        (["--stations", "a", "--host", "a b"], "--host 'a b'"),
        (["--stations", "a", "--tls-cert", "x.pem"], "--tls-cert and --tls-key together"),
        (["--stations", "a", "--tls-cert", "/nonexistent.pem", "--tls-key", "/k"], "no such file"),
        (["--stations", "a", "--user", "no-such-user-here"], "no such user"),
    ],
)
def test_mistakes_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, args: list[str], words: str
) -> None:
    out = tmp_path / "broker"
    base = ["--site", SITE, "--out", str(out), "--host", "127.0.0.1"]
    if "--site" in args:
        base = base[2:]
    done = run_packline("broker", "config", *base, *args)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith("packline: error: ") and done.stderr.count("\n") == 1
    assert words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (out / "passwd").exists()


def test_a_secrets_file_that_holds_no_password_is_not_overwritten_silently(
    tmp_path: Path,
) -> None:
    out = tmp_path / "broker"
    config(out)
    (out / "secrets" / "a.url").write_text("garbage\n")
    done = run_packline(
        *("broker", "config", "--site", SITE, "--stations", "a,b", "--out", str(out)),
        *("--host", "127.0.0.1"),
    )
    assert done.returncode == 2
    assert "a.url holds no broker URL: remove it or give --rotate a" in done.stderr
    config(out, "--rotate", "a")
    assert password(out, "a")


@pytest.mark.mqtt
def test_a_running_broker_takes_a_rotation_on_sighup_and_saves_its_state(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    port = free_port()
    config(out, port=port)
    old_a = secret(out, "a")
    broker = ConfiguredBroker(out=out, port=port).start()
    try:
        a = Client(old_a, name="a").connected()
        b = Client(secret(out, "b"), name="b").connected()
        config(out, "--rotate", "a", port=port)
        broker.reload()
        # a's session on the old password is ended; b's goes on.
        assert a.disconnected.wait(10)
        assert not b.disconnected.is_set()
        assert not b.publish(topics.events(SITE, "b"), b"still here").is_failure
        refused = Client(old_a, name="a-old")
        assert refused.connack().value == 0x87
        Client(secret(out, "a"), name="a-new").connected().close()

        # b left out of the list: its session ends on reload, and it cannot log in again.
        old_b = secret(out, "b")
        config(out, stations="a", port=port)
        broker.reload()
        assert b.disconnected.wait(10)
        gone = Client(old_b, name="b-gone")
        assert gone.connack().value == 0x87
        for client in (a, b, refused, gone):
            client.close()
    finally:
        broker.stop()
    assert (out / "mosquitto.db").exists()  # persistence in the folder it was given


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder others may pass through (pytest's own are root's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="packline-broker-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.mqtt
@pytest.mark.skipif(os.geteuid() != 0, reason="handing files to another user needs root")
def test_as_root_user_hands_the_broker_its_files_and_it_runs_as_that_user(
    open_tmp: Path,
) -> None:
    out = open_tmp / "broker"
    port = free_port()
    config(out, "--user", "nobody", port=port)
    nobody = pwd.getpwnam("nobody").pw_uid
    for path in (out, out / "passwd", out / "acl", out / "mosquitto.conf"):
        assert path.stat().st_uid == nobody, path
    assert (out / "secrets").stat().st_uid == 0
    assert (out / "secrets" / "a.url").stat().st_uid == 0
    assert "user nobody" in (out / "mosquitto.conf").read_text().splitlines()

    broker = ConfiguredBroker(out=out, port=port).start()
    try:
        # Switched to nobody, it still reads passwd and acl and writes its state.
        central = Client(secret(out, "central"), name="central").connected()
        central.subscribe(topics.subscription(SITE, "events"))
        a = Client(secret(out, "a"), name="a").connected()
        assert not a.publish(topics.events(SITE, "a"), b"x").is_failure
        assert central.receive() == (topics.events(SITE, "a"), b"x")
        for client in (a, central):
            client.close()
        assert broker.proc is not None
        assert os.stat(f"/proc/{broker.proc.pid}").st_uid == nobody
    finally:
        broker.stop()
    assert (out / "mosquitto.db").stat().st_uid == nobody
