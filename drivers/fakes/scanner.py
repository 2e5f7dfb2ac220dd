"""A scripted scanner: yields given strings as scans, for the demo, tests and trials.

URLs:

* ``script:///path/to/scans.txt?interval=1.0&loop=false`` — one scan per line of the
  file; blank lines and lines starting with ``#`` are skipped;
* ``script:?scan=4006381333931&scan=SKU-1&interval=0`` — the scans in the URL.

In the text, ``<GS>`` stands for the GS1 group separator (``\\x1d``), and a line that is
exactly ``<UNREADABLE>`` plays an unreadable scan: it is dropped and reported to
``on_unreadable`` as a real scanner's garbled read would be.

Scans come out one per ``interval`` seconds (the first one ``interval`` after opening);
more can be added while it runs with :meth:`ScriptedScanner.push`. When the script is
used up the scanner stays ``ready`` and idle, like a real one nobody is using.
"""

from __future__ import annotations

import collections
import logging
import threading
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from drivers.errors import BadDeviceURL, ScannerError, ScannerGone
from drivers.scanners.base import (
    GS,
    Scan,
    Scanner,
    ScannerState,
    StateListener,
    UnreadableListener,
    UnreadableScan,
)
from drivers.scanners.hotplug import Clock
from drivers.scanners.options import OptionSpec, parse_options, parse_seconds

__all__ = ["UNREADABLE", "ScriptedScanner", "open_url", "read_script"]

log = logging.getLogger(__name__)

UNREADABLE = "<UNREADABLE>"
"""A script line that plays an unreadable scan."""


def _flag(value: str) -> bool:
    table = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    try:
        return table[value.lower()]
    except KeyError:
        raise ValueError(f"{value!r} is not true or false") from None


_OPTIONS: OptionSpec = {"interval": parse_seconds, "loop": _flag, "scan": str}


def read_script(path: Path) -> list[str]:
    """The scans in a script file (``<GS>`` not yet replaced)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ScannerError(f"cannot read scan script {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ScannerError(
            f"scan script {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"offset {exc.start}): write one scan per line in a text file"
        ) from None
    return [line for line in lines if line.strip() and not line.startswith("#")]


class ScriptedScanner(Scanner):
    """A :class:`~drivers.scanners.base.Scanner` that yields the strings it is given."""

    def __init__(
        self,
        *,
        scans: Iterable[str] = (),
        interval: float = 0.0,
        loop: bool = False,
        source: str = "script",
        url: str | None = None,
        on_state: StateListener | None = None,
        on_unreadable: UnreadableListener | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.url = url or "script:"
        self.source = source
        self.interval = interval
        self.loop = loop
        self.clock = clock or Clock()
        self._script = [s.replace("<GS>", GS) for s in scans]
        self._queue: collections.deque[str] = collections.deque(self._script)
        self._on_state = on_state
        self._on_unreadable = on_unreadable
        self._cond = threading.Condition()
        self._closed = False
        self._next_due = self.clock.mono() + interval
        self._state = ScannerState.OPENING
        self._report(ScannerState.OPENING)
        self._state = ScannerState.READY
        self._report(ScannerState.READY)

    @property
    def state(self) -> ScannerState:
        """``ready`` until closed."""
        return self._state

    def push(self, text: str) -> None:
        """Add a scan to the end of the script (from any thread)."""
        with self._cond:
            self._queue.append(text.replace("<GS>", GS))
            self._cond.notify_all()

    def read(self, timeout: float | None = None) -> Scan | None:
        """Return the next scripted scan when it is due, or None on timeout or close."""
        with self._cond:
            if self._closed:
                raise ScannerGone(f"scanner {self.source} is closed")
            deadline = None if timeout is None else self.clock.mono() + timeout
            while not self._closed:
                now = self.clock.mono()
                if not self._queue and self.loop and self._script:
                    self._queue.extend(self._script)
                if self._queue and now >= self._next_due:
                    text = self._queue.popleft()
                    self._next_due = now + self.interval
                    scan = self._emit(text)
                    if scan is not None:
                        return scan
                    continue
                waits = []
                if deadline is not None:
                    if now >= deadline:
                        return None
                    waits.append(deadline - now)
                if self._queue:
                    waits.append(self._next_due - now)
                self._cond.wait(min(waits) if waits else None)
            return None

    def close(self) -> None:
        """Stop; a blocked :meth:`read` returns None, later reads raise ScannerGone."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._state = ScannerState.CLOSED
            self._cond.notify_all()
        self._report(ScannerState.CLOSED)

    def _emit(self, text: str) -> Scan | None:
        at_wall, at_mono = self.clock.wall(), self.clock.mono()
        if text != UNREADABLE:
            return Scan(text=text, at_wall=at_wall, at_mono=at_mono, source=self.source)
        item = UnreadableScan(
            reason="scripted unreadable scan",
            raw=UNREADABLE,
            at_wall=at_wall,
            at_mono=at_mono,
            source=self.source,
        )
        log.warning("%s: dropped unreadable scan (%s)", self.source, item.reason)
        if self._on_unreadable is not None:
            self._on_unreadable(item)
        return None

    def _report(self, state: ScannerState) -> None:
        if self._on_state is not None:
            self._on_state(state, self.source)


def open_url(
    url: str,
    *,
    on_state: StateListener | None = None,
    on_unreadable: UnreadableListener | None = None,
) -> ScriptedScanner:
    """Open ``script:///file.txt?interval=1.0&loop=true`` or ``script:?scan=A&scan=B``."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "script" or parts.netloc:
        raise BadDeviceURL(f"{url!r}: expected script:///path/to/scans.txt or script:?scan=...")
    raw = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    opts = parse_options(url, raw, _OPTIONS, multi=frozenset({"scan"}))
    path = urllib.parse.unquote(parts.path)
    scans: list[str] = list(opts.get("scan", []))
    if path:
        scans = read_script(Path(path)) + scans
    elif not scans:
        raise BadDeviceURL(f"{url!r}: give a script file path or scan=... options")
    return ScriptedScanner(
        scans=scans,
        interval=opts.get("interval", 1.0 if path else 0.0),
        loop=opts.get("loop", False),
        source=path or "script",
        url=url,
        on_state=on_state,
        on_unreadable=on_unreadable,
    )
