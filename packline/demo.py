"""``packline demo``: a working day of a packing room, in fast-forward, on one machine.

Everything runs as it would in a warehouse: a private Mosquitto, ``packline central
serve`` with sample orders and the status page, and one ``packline edge run`` per
station. Each station's scanner is a pseudo-terminal read as a serial scanner, into
which the demo types what a packer scans; bench-01 prints on a fake networked Brother
QL (raster over TCP, status over SNMP), the others on ``file://`` virtual printers.
Station bench-03 reaches the broker through a relay the demo can cut, as a pulled
network cable would.

The day runs on a demo clock from 08:00, ``--speed`` times faster than real time,
and central's rules (deadlines, escalation, the offline limit) are scaled by the same
factor, so what takes hours in a warehouse takes seconds here. Between normal
orders the day brings: a presale order, an order in two parcels, a wrong item scanned
and put right, bench-01's printer running out of labels and being refilled, bench-03
losing its network and catching up, an order nobody packed breaching its deadline and
escalating, and a return inspected at bench-02. ``--until HH:MM`` ends the day there
and prints what central recorded.

The console names the part (``broker``, ``central``, ``bench-01``…) on every line. A
part that dies stops the demo with one line naming it (exit code 1). A port that is
taken stops it before anything starts (one line, exit code 2). The temporary folder is
removed at exit unless ``--workdir`` was given.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import queue
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import typer

from packline.devbroker import MosquittoBroker, free_port, stop_process
from packline.samples import packing_scans, sample_orders
from sync.errors import UserError
from sync.mqtt import hide_password, parse_mqtt_url

__all__ = ["demo"]

DAY_START = dt.time(8, 0)
DAY_END = dt.time(18, 0)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class _Console:
    """Prints every part's lines with its name, once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}

    def say(self, part: str, text: str) -> None:
        with self._lock:
            print(f"{part:<8} | {text}", flush=True)

    def relay(self, part: str, stream: IO[bytes]) -> None:
        """Copy ``stream`` line by line, dropping a line whose message repeats the one
        just before it (one library reporting what another already said)."""
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            if not line:
                continue
            message = line.split(": ", 1)[-1]
            if self._last.get(part) == message:
                continue
            self._last[part] = message
            self.say(part, line)


class _Part:
    """A process the demo started, with its console name."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], console: _Console) -> None:
        self.name = name
        self.proc = proc
        self.stopping = False
        if proc.stdout is not None:
            threading.Thread(
                target=console.relay, args=(name, proc.stdout), name=f"log-{name}", daemon=True
            ).start()

    def died(self) -> int | None:
        """The exit code when it ended without being asked to."""
        if self.stopping:
            return None
        return self.proc.poll()

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping = True
        stop_process(self.proc, timeout=timeout)


def _spawn(
    name: str, args: list[str], console: _Console, env: dict[str, str] | None = None
) -> _Part:
    proc = subprocess.Popen(
        [sys.executable, "-m", "packline", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return _Part(name, proc, console)


class _Relay:
    """A TCP relay to the broker that can be cut and mended, as a network cable."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if not self._up.is_set():
                conn.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)  # an idle MQTT link is not a dead one
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._open |= {conn, upstream}
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
            with self._lock:
                self._open.discard(s)

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            held = list(self._open)
        for s in held:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def mend(self) -> None:
        self._up.set()

    def close(self) -> None:
        self.cut()
        self._sock.close()


class _Bench:
    """A station: its agent, the pty its scanner reads, the packer's queue of scans."""

    def __init__(
        self,
        *,
        name: str,
        root: Path,
        mqtt_url: str,
        printer: str,
        console: _Console,
        interval: float,
    ) -> None:
        self.name = name
        self.kiosk = f"127.0.0.1:{free_port()}"
        self.master, slave = os.openpty()
        self._slave = slave  # open until the agent opens the pty
        data = root / name
        data.mkdir(parents=True, exist_ok=True)
        self.db = data / f"{name}.sqlite"
        self.badge = f"OP-{name.rsplit('-', 1)[-1]}00"
        self.interval = interval
        # Jobs: (whether the packer starts clean with badge and CMD-CANCEL, the scans).
        self.work: queue.Queue[tuple[bool, list[str]]] = queue.Queue()
        self.paused = threading.Event()
        self.last_scan = ""
        self._fd_lock = threading.Lock()
        self._closed = False
        self.part = _spawn(
            name,
            [
                "edge", "run", "--station", name, "--mqtt-url", mqtt_url,
                "--scanner", f"serial://{os.ttyname(slave)}?baud=9600&terminator=cr",
                "--printer", printer, "--data-dir", str(data),
            ],
            console,
            env={"PACKLINE_SITE": "demo", "PACKLINE_KIOSK_LISTEN": self.kiosk,
                 "PACKLINE_HEALTH_EVERY": "1"},
        )  # fmt: skip

    @property
    def screen(self) -> str:
        return f"http://{self.kiosk}/"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.screen + "api/view", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def scan(self, codes: list[str]) -> None:
        # Under the lock: a closed pty's descriptor number may already be another file's.
        with self._fd_lock:
            if self._closed:
                return
            for code in codes:
                os.write(self.master, code.encode() + b"\r")
        if codes:
            self.last_scan = codes[-1]

    def packing(self) -> bool:
        """Whether the bench has an order in progress (its store, read-only)."""
        try:
            conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
            try:
                row = conn.execute("SELECT state FROM bench_state").fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return False
        return bool(row) and json.loads(row[0]).get("order") is not None

    def turn(self, body: list[str]) -> None:
        """What the packer scans for one job: badge, a clean start, then ``body``."""
        scans = [self.badge]
        if self.packing():
            scans.append("CMD-CANCEL")
        self.scan(scans + body)

    def stop(self) -> None:
        with self._fd_lock:
            self._closed = True
        self.part.stop()
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def _check_port_free(port: int, *, what: str, option: str) -> None:
    try:
        with socket.create_server(("127.0.0.1", port)):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UserError(
            f"cannot run {what} on 127.0.0.1:{port}: {reason}; choose another {option}"
        ) from None


def _wait(what: str, ready: Callable[[], bool], parts: list[_Part], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in parts:
            code = p.died()
            if code is not None:
                raise _PartDied(p.name, code)
        if ready():
            return
        time.sleep(0.2)
    raise UserError(f"{what} did not start within {timeout:.0f}s; see the lines above")


class _PartDied(Exception):
    def __init__(self, name: str, code: int) -> None:
        super().__init__(name)
        self.name = name
        self.code = code


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code == 503  # serving, waiting for its broker
    except OSError:
        return False


def _duration(seconds: float) -> str:
    return f"{max(seconds, 1.0):.1f}s"


def _central_config(path: Path, speed: float) -> None:
    """central.toml with the day's rules scaled to the demo clock."""

    def d(hours: float) -> str:
        return f'"{_duration(hours * 3600 / speed)}"'

    levels = (
        '[{name = "supervisor", to = "{dept}"}, '
        f'{{name = "department head", to = "{{dept}}-head", after = {d(1)}}}, '
        f'{{name = "management", to = "management", after = {d(1)}}}]'
    )
    path.write_text(
        "tick_every = 1\n"
        f"offline_after = {d(5 / 60)}\n"
        "[deadlines]\n"
        f"warn_before = {d(6)}\n"
        "[deadlines.normal]\n"
        f"pack_within = {d(24)}\n"
        f"ship_within = {d(48)}\n"
        "[escalation.general]\n"
        f"levels = {levels}\n"
        f"repeat_every = {d(0.25)}\n"
        "[escalation.major]\n"
        f"levels = {levels}\n"
        f"repeat_every = {d(0.25)}\n"
        f"reach_top_within = {d(1)}\n",
        encoding="utf-8",
    )


def _order_day(count: int, *, now: dt.datetime, speed: float) -> list[dict[str, Any]]:
    """The normal orders, paid during the last few (demo) hours."""
    orders = sample_orders(count, prefix="PDD")
    for i, order in enumerate(orders):
        ago = (3 * 3600 * (count - i) / count) / speed
        order["paid_at"] = (now - dt.timedelta(seconds=ago)).isoformat()
    return orders


def _story_orders(now: dt.datetime, speed: float) -> dict[str, dict[str, Any]]:
    """The orders of the day's story, by role."""
    base = sample_orders(3, seed=11, prefix="DAY")
    presale, split, late = base
    presale.update(
        order_no="PRE-0001",
        order_type="presale",
        promised_ship_at=(now + dt.timedelta(seconds=10 * 3600 / speed)).isoformat(),
        paid_at=(now - dt.timedelta(days=3)).isoformat(),
    )
    split.update(order_no="SPLIT-0001", parcels=2, paid_at=now.isoformat())
    if sum(line["qty"] for line in split["lines"]) < 2:
        split["lines"][0]["qty"] = 2
    # Nobody packs it: its pack-by deadline passes at 10:30 on the demo clock.
    late.update(
        order_no="LATE-0001",
        paid_at=(now - dt.timedelta(seconds=(24 - 2.5) * 3600 / speed)).isoformat(),
    )
    return {"presale": presale, "split": split, "late": late}


def _import(
    path: Path, orders: list[dict[str, Any]], *, db_url: str, config: Path, console: _Console
) -> None:
    path.write_text(json.dumps(orders, ensure_ascii=False, indent=1), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "packline", "central", "import-orders", str(path),
         "--db-url", db_url, "--config", str(config)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    for line in (done.stdout + done.stderr).splitlines():
        console.say("central", line)
    if done.returncode != 0:
        raise UserError(f"importing the demo's orders failed (exit {done.returncode})")


def _demo_login(db_url: str, root: Path) -> tuple[str, Path]:
    """An ``admin`` with a new password, and an API token in ``root/api-token``."""
    import secrets

    from central.db import open_db
    from central.users import UserRefused, add_user, issue_token, set_password

    password = secrets.token_urlsafe(9)
    engine = open_db(db_url)
    try:
        try:
            add_user(engine, "admin", role="admin", password=password)
        except UserRefused:  # a --workdir used before
            set_password(engine, "admin", password)
        token = issue_token(engine, "admin")
    finally:
        engine.dispose()
    token_file = root / "api-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return password, token_file


def _squeeze(values: list[str | None]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v is not None and (not out or out[-1] != v):
            out.append(v)
    return out


def _summary(db: Path) -> list[str]:
    """What central recorded of the day, from its database."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        parcels, shipped_orders = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT order_no) FROM shipments"
        ).fetchone()
        split = conn.execute(
            "SELECT COUNT(*) FROM shipments WHERE order_no = 'SPLIT-0001'"
        ).fetchone()[0]
        presale = conn.execute(
            "SELECT station FROM shipments WHERE order_no = 'PRE-0001'"
        ).fetchone()
        escalated = conn.execute(
            "SELECT id, order_no, level FROM exceptions WHERE order_no = 'LATE-0001' "
            "ORDER BY id LIMIT 1"
        ).fetchone()
        returns = conn.execute(
            "SELECT station, payload FROM events WHERE type = 'return.inspected' ORDER BY id"
        ).fetchall()
        per_station = conn.execute(
            "SELECT station, COUNT(*) FROM shipments GROUP BY station ORDER BY station"
        ).fetchall()
        printer = [
            r[0]
            for r in conn.execute(
                "SELECT new_value FROM station_history WHERE station = 'bench-01' "
                "AND field = 'printer' ORDER BY id"
            )
        ]
        online = [
            r[0]
            for r in conn.execute(
                "SELECT new_value FROM station_history WHERE station = 'bench-03' "
                "AND field = 'online' ORDER BY id"
            )
        ]
    finally:
        conn.close()
    lines = [
        f"shipped: {parcels} parcels of {shipped_orders} orders ("
        + ", ".join(f"{s} {n}" for s, n in per_station)
        + ")",
        f"split parcel: SPLIT-0001 shipped in {split} parcels",
        f"presale: PRE-0001 {'shipped at ' + presale[0] if presale else 'not shipped'}",
        "printer: bench-01 " + (" → ".join(_squeeze(printer)) or "no change recorded"),
        "network: bench-03 online " + (" → ".join(_squeeze(online)) or "no change recorded"),
    ]
    if escalated:
        lines.append(
            f"deadline: exception #{escalated[0]} for {escalated[1]} escalated to level "
            f"{escalated[2]}"
        )
    else:
        lines.append("deadline: no exception for LATE-0001")
    for station, payload in returns:
        outcome = json.loads(payload).get("outcome", "?")
        lines.append(f"return: inspected at {station} ({outcome})")
    if not returns:
        lines.append("return: none inspected")
    return lines


def demo(
    http_port: int = typer.Option(8080, min=1, max=65535, help="Port of the web status page."),
    mqtt_port: int | None = typer.Option(
        None, min=1, max=65535, help="Port for the demo's own broker (default: a free one)."
    ),
    mqtt_url: str | None = typer.Option(
        None, metavar="URL", help="Use this broker instead of starting one."
    ),
    stations: int = typer.Option(
        3, min=1, max=20, help="How many simulated stations (the day's story needs 3)."
    ),
    orders: int = typer.Option(400, min=10, help="How many normal orders the day brings."),
    interval: float = typer.Option(
        2.0, min=0.05, help="Seconds a packer takes per order (real time)."
    ),
    speed: float = typer.Option(
        120.0, min=1.0, max=5000.0, help="How much faster than real time the day runs."
    ),
    until: str | None = typer.Option(
        None, metavar="HH:MM", help="End the day at this demo time and print it (08:00-23:59)."
    ),
    workdir: Path | None = typer.Option(
        None, metavar="DIR", help="Where state goes and stays (default: a temp dir, removed)."
    ),
    duration: float | None = typer.Option(None, help="Stop after this many seconds."),
) -> None:
    """Run a packing room's day: broker, central, web page, stations; Ctrl-C stops it."""
    end: dt.time | None = None
    if until is not None:
        m = _CLOCK.match(until)
        if not m or dt.time(int(m.group(1)), int(m.group(2))) <= DAY_START:
            raise UserError(f"--until {until!r}: give a time after 08:00 as HH:MM, e.g. 14:00")
        end = dt.time(int(m.group(1)), int(m.group(2)))
    if mqtt_url is not None:
        try:
            parse_mqtt_url(mqtt_url)
        except ValueError as exc:
            raise UserError(f"--mqtt-url: {exc}") from None
    _check_port_free(http_port, what="the status page", option="--http-port")
    if mqtt_url is None and mqtt_port is not None:
        _check_port_free(mqtt_port, what="the demo's broker", option="--mqtt-port")
    root = workdir or Path(tempfile.mkdtemp(prefix="packline-demo-"))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the demo's folder {root}: {exc.strerror or exc}; "
            "give --workdir a folder this user can write to"
        ) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        code = _run(
            root=root, http_port=http_port, mqtt_port=mqtt_port, mqtt_url=mqtt_url,
            stations=stations, orders=orders, interval=interval, speed=speed, end=end,
            duration=duration, stop=stop,
        )  # fmt: skip
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    if code:
        raise typer.Exit(code)


def _run(
    *,
    root: Path,
    http_port: int,
    mqtt_port: int | None,
    mqtt_url: str | None,
    stations: int,
    orders: int,
    interval: float,
    speed: float,
    end: dt.time | None,
    duration: float | None,
    stop: threading.Event,
) -> int:
    console = _Console()
    broker: MosquittoBroker | None = None
    parts: list[_Part] = []
    benches: list[_Bench] = []
    relay: _Relay | None = None
    printer = None
    try:
        if mqtt_url is None:
            broker = MosquittoBroker(workdir=root / "mosquitto", port=mqtt_port)
            try:
                broker.start()
            except (RuntimeError, FileNotFoundError) as exc:
                raise UserError(f"the demo's broker did not start: {exc}") from None
            assert broker.proc is not None
            parts.append(_Part("broker", broker.proc, console))
            mqtt_url = broker.url
        db = root / "central.db"
        db_url = f"sqlite:///{db}"
        config = root / "central.toml"
        _central_config(config, speed)
        now = dt.datetime.now(dt.UTC)
        _import(
            root / "orders.json",
            _order_day(orders, now=now, speed=speed),
            db_url=db_url,
            config=config,
            console=console,
        )
        password, token_file = _demo_login(db_url, root)
        central = _spawn(
            "central",
            ["central", "serve", "--config", str(config), "--db-url", db_url, "--mqtt-url",
             mqtt_url, "--site", "demo", "--http-port", str(http_port)],
            console,
        )  # fmt: skip
        parts.append(central)
        page = f"http://127.0.0.1:{http_port}/"
        _wait("central", lambda: _http_ok(page + "healthz"), parts, 90)

        from drivers.fakes.ql import FakeQLPrinter

        printer = FakeQLPrinter(out_dir=root / "bench-01" / "printed")
        parsed = parse_mqtt_url(mqtt_url)
        relay = _Relay((parsed.host, parsed.port))
        for i in range(stations):
            name = f"bench-{i + 1:02d}"
            url = mqtt_url
            if i == 2:
                url = mqtt_url.replace(f":{parsed.port}", f":{relay.port}", 1)
            where = printer.url if i == 0 else f"file://{root / name / 'printed'}?roll_labels=500"
            benches.append(
                _Bench(name=name, root=root, mqtt_url=url, printer=where, console=console,
                       interval=interval)
            )  # fmt: skip
            parts.append(benches[-1].part)
        for b in benches:
            _wait(b.name, b.ready, parts, 90)
        screens = "".join(
            f"  {b.name} packer's screen {b.screen} (pid {b.part.proc.pid})\n" for b in benches
        )
        print(
            f"\npackline demo is running: status page {page} "
            f"(log in as admin, password {password}; an API token is in {token_file})\n"
            + screens
            + f"broker {hide_password(mqtt_url)}, state in {root}. "
            f"The day runs {speed:g}x fast from 08:00. Ctrl-C stops everything.\n",
            flush=True,
        )
        day = _Day(benches=benches, printer=printer, relay=relay, console=console, speed=speed)
        story = _story_orders(dt.datetime.now(dt.UTC), speed)
        _import(
            root / "story.json", list(story.values()), db_url=db_url, config=config, console=console
        )
        return day.run(
            normal=_normal_jobs(root / "orders.json"), story=story, parts=parts, end=end,
            duration=duration, stop=stop, summary=lambda: _summary(db),
        )  # fmt: skip
    except _PartDied as died:
        print(
            f"packline demo: {died.name} stopped unexpectedly (exit code {died.code}); "
            "stopping the demo",
            file=sys.stderr,
            flush=True,
        )
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()  # the packers put their scanners down
        print("stopping the demo...", file=sys.stderr, flush=True)
        for b in benches:
            b.stop()
        for p in parts:
            if p.name == "central":
                p.stop(timeout=15)
        if printer is not None:
            printer.stop()
        if relay is not None:
            relay.close()
        if broker is not None:
            for p in parts:
                p.stopping = True
            broker.stop()


def _normal_jobs(path: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return data


class _Day:
    """The demo clock and the day's script."""

    def __init__(
        self,
        *,
        benches: list[_Bench],
        printer: Any,
        relay: _Relay,
        console: _Console,
        speed: float,
    ) -> None:
        self.benches = {b.name: b for b in benches}
        self.printer = printer
        self.relay = relay
        self.console = console
        self.speed = speed
        self.t0 = time.monotonic()
        self.normal: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def clock(self) -> dt.time:
        minutes = (time.monotonic() - self.t0) * self.speed / 60
        total = DAY_START.hour * 60 + DAY_START.minute + int(minutes)
        return dt.time(min(total // 60, 23), total % 60)

    def say(self, text: str) -> None:
        self.console.say("demo", f"{self.clock():%H:%M} {text}")

    def run(
        self,
        *,
        normal: list[dict[str, Any]],
        story: dict[str, dict[str, Any]],
        parts: list[_Part],
        end: dt.time | None,
        duration: float | None,
        stop: threading.Event,
        summary: Callable[[], list[str]],
    ) -> int:
        self.normal = list(normal)
        if len(self.benches) < 3:
            return self._plain(parts=parts, end=end, duration=duration, stop=stop)
        b2, b3 = self.benches["bench-02"], self.benches["bench-03"]
        steps: list[tuple[dt.time, str, Callable[[], None]]] = [
            (dt.time(8, 30), "presale order PRE-0001 packed at bench-02",
             lambda: b2.work.put((True, packing_scans(story["presale"])))),
            (dt.time(9, 0), "SPLIT-0001 ships in two parcels at bench-03",
             lambda: b3.work.put((True, packing_scans(story["split"])))),
            (dt.time(9, 30), "bench-02 scans a wrong item, takes it out and says OK",
             lambda: b2.work.put((True, self._wrong_item()))),
            (dt.time(10, 0), "bench-01's printer runs out of labels", self._labels_out),
            (dt.time(10, 30), "LATE-0001, never packed, passes its pack-by deadline (10:30)",
             lambda: None),
            (dt.time(10, 45), "bench-01's printer is refilled", self._labels_in),
            (dt.time(11, 0), "bench-03 loses its network and packs on", self.relay.cut),
            (dt.time(12, 0), "bench-03's network is back: it catches up", self.relay.mend),
            (dt.time(13, 0), "a customer's return of PRE-0001 is inspected at bench-02",
             lambda: b2.work.put((True, self._return(story["presale"])))),
            (DAY_END, "end of the day", lambda: None),
        ]  # fmt: skip
        for bench in self.benches.values():
            threading.Thread(
                target=self._packer, args=(bench, stop), daemon=True,
                name=f"packer-{bench.name}",
            ).start()  # fmt: skip
        self.t0 = time.monotonic()
        self.say("the shift starts: packers log in and pack the morning's orders")
        started = time.monotonic()
        while not stop.is_set():
            for p in parts:
                code = p.died()
                if code is not None:
                    stop.set()
                    raise _PartDied(p.name, code)
            now = self.clock()
            while steps and steps[0][0] <= now:
                _, what, act = steps.pop(0)
                self.say(what)
                act()
            if end is not None and now >= end:
                stop.set()
                time.sleep(1.0)  # the last records on their way
                for line in summary():
                    self.console.say("day", line)
                return 0
            if duration is not None and time.monotonic() - started > duration:
                break
            stop.wait(0.2)
        return 0

    def _plain(
        self,
        *,
        parts: list[_Part],
        end: dt.time | None,
        duration: float | None,
        stop: threading.Event,
    ) -> int:
        """Fewer than three stations: normal orders only."""
        self.t0 = time.monotonic()
        self.say("the day's story needs 3 stations: packing normal orders only")
        for bench in self.benches.values():
            threading.Thread(target=self._packer, args=(bench, stop), daemon=True).start()
        started = time.monotonic()
        while not stop.is_set():
            for p in parts:
                code = p.died()
                if code is not None:
                    stop.set()
                    raise _PartDied(p.name, code)
            if end is not None and self.clock() >= end:
                break
            if duration is not None and time.monotonic() - started > duration:
                break
            stop.wait(0.2)
        return 0

    def _next_normal(self) -> list[str] | None:
        with self._lock:
            return packing_scans(self.normal.pop(0)) if self.normal else None

    def _packer(self, bench: _Bench, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                clean, job = bench.work.get_nowait()
            except queue.Empty:
                clean, job = True, ([] if bench.paused.is_set() else self._next_normal() or [])
            if job and clean:
                # A packer starts the next order when the last one is done.
                waited = time.monotonic()
                while bench.packing() and time.monotonic() - waited < 20 and not stop.is_set():
                    stop.wait(0.1)
                bench.turn(job)
            elif job:
                bench.scan(job)
            stop.wait(bench.interval)

    def _wrong_item(self) -> list[str]:
        scans = self._next_normal()
        if scans is None:
            return []
        # Right after the order: a wrong item raises the alarm that CMD-OK clears.
        return [scans[0], "6900000000000", "CMD-OK", *scans[1:]]

    def _labels_out(self) -> None:
        b1 = self.benches["bench-01"]
        b1.paused.set()
        self.printer.set(no_media=True)
        time.sleep(1.5)  # the bench reads its printer every second
        if not b1.packing():
            # One more order: the label it needs cannot print.
            scans = self._next_normal()
            if scans:
                b1.work.put((True, scans))

    def _labels_in(self) -> None:
        b1 = self.benches["bench-01"]
        self.printer.set(no_media=False)
        time.sleep(1.5)
        if b1.packing() and b1.last_scan:
            # The packer scans the refused item again: now the label prints.
            b1.scan([b1.last_scan])
        b1.paused.clear()

    @staticmethod
    def _return(order: dict[str, Any]) -> list[str]:
        items = packing_scans(order)[1:]
        return ["CMD-RETURN", str(order["tracking_no"]), *items[:1], "CMD-RESTOCK"]
