"""USB HID ("keyboard wedge") scanners read through Linux evdev.

URL: ``evdev:///dev/input/by-id/usb-…-event-kbd?keymap=de&terminator=enter`` or
``evdev://0c2e:0b61`` (USB vendor:product, hex). The device is grabbed, so scans never
leak into a desktop or a login prompt on the same Pi. Reading (this module) is separate
from decoding (:class:`~drivers.scanners.assembler.BarcodeAssembler`, pure).

Unplugging (ENODEV) makes the scanner ``gone``; it is reopened by polling its path
(or, for vendor:product, the list of input devices) with jittered backoff, so a
re-plugged scanner — which udev links again under ``/dev/input/by-id`` — comes back
by itself. Unreadable barcodes are dropped, logged and reported to ``on_unreadable``
exactly as for serial scanners.
"""

from __future__ import annotations

import contextlib
import errno
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import evdev

from drivers.errors import BadDeviceURL, ScannerError
from drivers.scanners.assembler import TERMINATOR_KEYS, Barcode, BarcodeAssembler
from drivers.scanners.base import Scan, StateListener, UnreadableListener, UnreadableScan
from drivers.scanners.hotplug import Backoff, Clock, HotplugScanner
from drivers.scanners.keymaps import KEYMAPS
from drivers.scanners.options import choice, parse_options, parse_seconds

__all__ = ["OPTIONS", "EvdevScanner", "open_url", "to_scans"]


def _flag(value: str) -> bool:
    table = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    try:
        return table[value.lower()]
    except KeyError:
        raise ValueError(f"{value!r} is not true or false") from None


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"{value!r} is not a positive integer")
    return number


OPTIONS: dict[str, Callable[[str], Any]] = {
    "keymap": choice({name: name for name in KEYMAPS}),
    "terminator": choice({name: name for name in TERMINATOR_KEYS}),
    "prefix": str,
    "suffix": str,
    "grab": _flag,
    "max_length": _positive_int,
    "reconnect_min": parse_seconds,
    "reconnect_max": parse_seconds,
}
"""Query options of an ``evdev://`` URL and how each is parsed."""

_VID_PID = re.compile(r"^(?P<vid>[0-9a-fA-F]{4}):(?P<pid>[0-9a-fA-F]{4})$")


def to_scans(barcodes: list[Barcode], *, source: str, clock: Clock) -> list[Scan | UnreadableScan]:
    """Turn assembled barcodes into scans.

    Event times are the kernel's wall clock; the monotonic time of each is derived
    from the offset between the two clocks now, which is exact unless the wall clock
    was stepped while the barcode was being typed.
    """
    wall_now, mono_now = clock.wall(), clock.mono()
    out: list[Scan | UnreadableScan] = []
    for b in barcodes:
        at_mono = mono_now - (wall_now - b.at)
        if b.problem is None:
            out.append(Scan(text=b.text, at_wall=b.at, at_mono=at_mono, source=source))
        else:
            raw = " ".join(b.keys[:200])
            out.append(
                UnreadableScan(
                    reason=b.problem, raw=raw, at_wall=b.at, at_mono=at_mono, source=source
                )
            )
    return out


class EvdevScanner(HotplugScanner):
    """A USB HID scanner on an input event device, by path or by vendor:product."""

    def __init__(
        self,
        *,
        path: str | None = None,
        vendor_product: tuple[int, int] | None = None,
        assembler: BarcodeAssembler | None = None,
        grab: bool = True,
        url: str | None = None,
        on_state: StateListener | None = None,
        on_unreadable: UnreadableListener | None = None,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> None:
        if (path is None) == (vendor_product is None):
            raise ValueError("give exactly one of path and vendor_product")
        self.path = path
        self.vendor_product = vendor_product
        self.assembler = assembler or BarcodeAssembler()
        self.grab = grab
        self._device: evdev.InputDevice[str] | None = None
        if vendor_product is not None:
            source = f"usb {vendor_product[0]:04x}:{vendor_product[1]:04x}"
        else:
            source = str(path)
        super().__init__(
            url=url or f"evdev://{source}",
            source=source,
            on_state=on_state,
            on_unreadable=on_unreadable,
            backoff=backoff,
            clock=clock,
        )

    def _find_path(self) -> str:
        if self.path is not None:
            return self.path
        assert self.vendor_product is not None
        vid, pid = self.vendor_product
        for candidate in sorted(evdev.list_devices()):
            with contextlib.suppress(OSError):
                device = evdev.InputDevice(candidate)
                try:
                    info = device.info
                    keys = device.capabilities().get(evdev.ecodes.EV_KEY, [])
                finally:
                    device.close()
                # A scanner often has several interfaces; the one that types has Enter.
                if (info.vendor, info.product) == (vid, pid) and evdev.ecodes.KEY_ENTER in keys:
                    return str(candidate)
        raise OSError(errno.ENODEV, f"no input device with USB id {vid:04x}:{pid:04x}")

    def _open_device(self) -> int:
        device = evdev.InputDevice(self._find_path())
        if self.grab:
            try:
                device.grab()
            except OSError as exc:
                device.close()
                if exc.errno == errno.EBUSY:
                    raise ScannerError(
                        f"{self.source} is grabbed by another program; stop it first"
                    ) from exc
                raise
        self._device = device
        self.assembler.reset()
        return int(device.fd)

    def _read_device(self) -> list[Scan | UnreadableScan]:
        device = self._device
        if device is None:
            raise OSError(errno.ENODEV, "device is not open")
        barcodes: list[Barcode] = []
        try:
            for event in device.read():
                barcode = self.assembler.feed(event)
                if barcode is not None:
                    barcodes.append(barcode)
        except BlockingIOError:
            pass  # nothing more to read right now
        except OSError:
            if barcodes:
                # Keep what completed before the device went; the error recurs next read.
                return to_scans(barcodes, source=self.source, clock=self.clock)
            raise
        return to_scans(barcodes, source=self.source, clock=self.clock)

    def _release_device(self) -> None:
        device, self._device = self._device, None
        self.assembler.reset()
        if device is not None:
            # A vanished device cannot be ungrabbed; closing its fd is enough.
            with contextlib.suppress(OSError):
                device.ungrab()
            with contextlib.suppress(OSError):
                device.close()


def open_url(
    url: str,
    *,
    on_state: StateListener | None = None,
    on_unreadable: UnreadableListener | None = None,
) -> EvdevScanner:
    """Open ``evdev:///dev/input/...`` or ``evdev://VID:PID`` (see :data:`OPTIONS`)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "evdev":
        raise BadDeviceURL(f"{url!r} is not an evdev:// URL")
    raw = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    opts = parse_options(url, raw, OPTIONS)
    path: str | None = None
    vendor_product: tuple[int, int] | None = None
    match = _VID_PID.match(parts.netloc)
    if match and parts.path in ("", "/"):
        vendor_product = (int(match["vid"], 16), int(match["pid"], 16))
    elif not parts.netloc and parts.path.startswith("/"):
        path = urllib.parse.unquote(parts.path)
    else:
        raise BadDeviceURL(
            f"{url!r}: expected evdev:///dev/input/by-id/... "
            "or evdev://VID:PID (hex, e.g. 0c2e:0b61)"
        )
    try:
        backoff = Backoff(
            minimum=opts.get("reconnect_min", 0.1), maximum=opts.get("reconnect_max", 2.0)
        )
    except ValueError as exc:
        raise BadDeviceURL(f"{url!r}: {exc}") from None
    assembler = BarcodeAssembler(
        keymap=opts.get("keymap", "us"),
        terminator=opts.get("terminator", "enter"),
        prefix=opts.get("prefix", ""),
        suffix=opts.get("suffix", ""),
        max_length=opts.get("max_length", 4096),
    )
    return EvdevScanner(
        path=path,
        vendor_product=vendor_product,
        assembler=assembler,
        grab=opts.get("grab", True),
        url=url,
        on_state=on_state,
        on_unreadable=on_unreadable,
        backoff=backoff,
    )
