"""``packline scanner`` run as a person runs it: a subprocess, a pty, Ctrl-C."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

WAIT = 20.0


class Running:
    """A ``packline`` subprocess whose stdout and stderr lines can be awaited."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "packline", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True).start()

    @staticmethod
    def _pump(stream: IO[str], sink: queue.Queue[str]) -> None:
        for line in stream:
            sink.put(line.rstrip("\n"))

    def wait_line(self, sink: queue.Queue[str], containing: str) -> str:
        while True:
            line = sink.get(timeout=WAIT)
            if containing in line:
                return line

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(WAIT)


def test_listen_prints_json_per_scan_and_states_on_stderr(pty_device: Any) -> None:
    run = Running("scanner", "listen", f"serial://{pty_device.url_path}?terminator=crlf", "--json")
    try:
        run.wait_line(run.err, "scanner ready")
        pty_device.write(b"4006381333931\r\n01040123\x1d10AB\r\n\xff\r\n")
        first = json.loads(run.wait_line(run.out, "text"))
        second = json.loads(run.wait_line(run.out, "text"))
        assert "unreadable scan" in run.wait_line(run.err, "unreadable")
        assert first["text"] == "4006381333931"
        assert second["text"] == "01040123\x1d10AB"
        assert first["source"] == pty_device.url_path
        assert isinstance(first["at_wall"], float)
    finally:
        code = run.interrupt()
    assert code == 0
    assert "scanner closed" in run.wait_line(run.err, "closed")


def test_listen_plain_shows_gs_visibly() -> None:
    run = Running("scanner", "listen", "script:?scan=A<GS>B&interval=0")
    try:
        assert run.wait_line(run.out, "A") == "A<GS>B"
    finally:
        assert run.interrupt() == 0


def test_a_bad_url_is_one_line_and_exit_2() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "packline", "scanner", "listen", "serial:///dev/x?baud=fast"],
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "packline: error: 'serial:///dev/x?baud=fast': bad value for 'baud': "
        "invalid literal for int() with base 10: 'fast'"
    ]


def test_list_shows_candidates_with_urls(tmp_path: Path) -> None:
    (tmp_path / "dev/input/by-id").mkdir(parents=True)
    (tmp_path / "dev/input/by-id/usb-Honeywell_Scanner-event-kbd").touch()
    (tmp_path / "dev/input/by-id/usb-Logitech_Mouse-event-mouse").touch()
    (tmp_path / "dev/ttyACM0").touch()
    out = subprocess.run(
        [sys.executable, "-m", "packline", "scanner", "list", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
    )
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        f"evdev://{tmp_path}/dev/input/by-id/usb-Honeywell_Scanner-event-kbd",
        f"serial://{tmp_path}/dev/ttyACM0",
    ]
