"""A fake ZPL printer on TCP: answers ``~HS`` like a Zebra and keeps every format.

Formats (``^XA``…``^XZ``) are kept as received; their ``^GF`` graphics are decoded
and, with ``out_dir``, saved as PNG. Each label takes ``slow`` seconds to "print",
during which ``~HS`` shows it in the buffer. Faults switch at run time:
``paper_out``, ``head_up``, ``paused``, ``ribbon_out``, ``buffer_full``, ``offline``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

from drivers.errors import DriverError
from drivers.fakes.control import ControlServer
from drivers.fakes.listen import output_folder, tcp_server
from drivers.printers.zpl.graphics import decode_graphic_fields

__all__ = ["FakeZplFormat", "FakeZplPrinter"]

_FLAGS = ("paper_out", "head_up", "paused", "ribbon_out", "buffer_full", "offline")
_PQ = re.compile(rb"\^PQ(\d+)", re.IGNORECASE)


@dataclasses.dataclass
class FakeZplFormat:
    """One ``^XA``…``^XZ`` format as received."""

    data: bytes
    images: list[Image.Image]
    copies: int
    printed: int = 0


class FakeZplPrinter:
    """A ZPL printer on ``host:port`` (0 = a free port), optional JSON control port."""

    settable = (*_FLAGS, "slow")

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int | None = None,
        out_dir: Path | None = None,
        slow: float = 0.1,
        label_length_dots: int = 1218,
    ) -> None:
        self.host = host
        self.out_dir = out_dir
        self.slow = slow
        self.label_length_dots = label_length_dots
        self.flags = dict.fromkeys(_FLAGS, False)
        self.formats: list[FakeZplFormat] = []
        self._waiting: list[FakeZplFormat] = []
        self._lock = threading.RLock()
        if out_dir is not None:
            output_folder(out_dir)
        self._tcp = tcp_server(host, port, what="print jobs")
        self.port: int = self._tcp.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._stopped = False
        self._control: ControlServer | None = None
        if control_port is not None:
            try:
                self._control = ControlServer(
                    handler=self._on_control, host=host, port=control_port
                )
            except DriverError:
                self._tcp.close()
                raise
        threading.Thread(target=self._accept, name="fake-zpl-tcp", daemon=True).start()
        threading.Thread(target=self._print, name="fake-zpl-engine", daemon=True).start()

    @property
    def url(self) -> str:
        """The ``zpl+tcp://`` URL that reaches this fake."""
        return f"zpl+tcp://{self.host}:{self.port}"

    @property
    def control_port(self) -> int | None:
        """The JSON control port, when started with one."""
        return self._control.port if self._control else None

    def set(self, **changes: Any) -> None:
        """Switch faults at run time: ``paper_out=True``, ``slow=2.0``..."""
        with self._lock:
            for name, value in changes.items():
                if name == "slow":
                    self.slow = float(value)
                elif name in self.flags:
                    self.flags[name] = bool(value)
                else:
                    raise ValueError(f"unknown setting {name!r} (known: {self.settable})")

    def state(self) -> dict[str, Any]:
        """Faults and counters, for the control channel."""
        with self._lock:
            return {
                **self.flags,
                "slow": self.slow,
                "jobs": len(self.formats),
                "labels": sum(f.printed for f in self.formats),
            }

    def _on_control(self, request: dict[str, Any]) -> dict[str, Any]:
        if "set" in request:
            self.set(**request["set"])
        return self.state()

    def host_status(self) -> bytes:
        """The three ``~HS`` lines as a Zebra sends them."""
        with self._lock:
            f = {k: int(v) for k, v in self.flags.items()}
            formats = len(self._waiting)
            remaining = sum(fmt.copies - fmt.printed for fmt in self._waiting)
            line1 = (
                f"030,{f['paper_out']},{f['paused']},{self.label_length_dots:04d},"
                f"{formats:03d},{f['buffer_full']},0,0,000,0,0,0"
            )
            line2 = f"001,0,{f['head_up']},{f['ribbon_out']},0,2,6,0,{remaining:08d},1,000"
            line3 = "1234,0"
        return b"".join(b"\x02" + line.encode() + b"\x03\r\n" for line in (line1, line2, line3))

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                return
            if self.flags["offline"]:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            self._conns.add(conn)
            threading.Thread(target=self._receive, args=(conn,), daemon=True).start()

    def _receive(self, conn: socket.socket) -> None:
        buffer = bytearray()
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buffer += data
                # Tilde commands act at once, even between formats.
                while (pos := buffer.find(b"~HS")) >= 0 and buffer.rfind(b"^XA", 0, pos) <= (
                    buffer.rfind(b"^XZ", 0, pos)
                ):
                    self._take_formats(bytes(buffer[:pos]))
                    del buffer[: pos + 3]
                    if not self.flags["offline"]:
                        conn.sendall(self.host_status())
                end = buffer.upper().rfind(b"^XZ")
                if end >= 0:
                    self._take_formats(bytes(buffer[: end + 3]))
                    del buffer[: end + 3]
        except OSError:
            pass
        finally:
            self._conns.discard(conn)
            conn.close()

    def _take_formats(self, data: bytes) -> None:
        for match in re.finditer(rb"\^XA.*?\^XZ", data, re.IGNORECASE | re.DOTALL):
            body = match.group(0)
            pq = _PQ.search(body)
            fmt = FakeZplFormat(
                data=body, images=decode_graphic_fields(body), copies=int(pq.group(1)) if pq else 1
            )
            with self._lock:
                self.formats.append(fmt)
                number = len(self.formats)
                if not self.flags["paper_out"] and not self.flags["head_up"]:
                    self._waiting.append(fmt)
            if self.out_dir is not None:
                (self.out_dir / f"format{number:04d}.zpl").write_bytes(body)
                for n, image in enumerate(fmt.images, start=1):
                    image.save(self.out_dir / f"format{number:04d}-{n}.png")

    def _print(self) -> None:
        while not self._stopped:
            with self._lock:
                blocked = any(self.flags[k] for k in ("paper_out", "head_up", "paused"))
                current = self._waiting[0] if self._waiting and not blocked else None
                slow = self.slow
            if current is None:
                time.sleep(0.01)
                continue
            time.sleep(slow)
            with self._lock:
                if any(self.flags[k] for k in ("paper_out", "head_up", "paused")):
                    continue
                current.printed += 1
                if current.printed >= current.copies:
                    self._waiting.pop(0)

    def stop(self) -> None:
        """Switch the printer off: close every socket."""
        if self._stopped:
            return
        self._stopped = True
        for sock in (self._tcp, *list(self._conns)):
            with contextlib.suppress(OSError):
                sock.close()
        if self._control is not None:
            self._control.close()

    def __enter__(self) -> FakeZplPrinter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
