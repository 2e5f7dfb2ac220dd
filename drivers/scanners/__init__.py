"""Barcode scanners: serial and evdev, chosen by URL.

>>> from drivers.scanners import open_scanner
>>> scanner = open_scanner("serial:///dev/ttyACM0?baud=9600&terminator=cr")  # doctest: +SKIP

The backend's library (pyserial, evdev) is imported only when a URL of its scheme is
opened, so a machine without it can still import this package.
"""

from __future__ import annotations

import importlib
import urllib.parse

from drivers.errors import BadDeviceURL
from drivers.scanners.base import (
    GS,
    Scan,
    Scanner,
    ScannerState,
    StateListener,
    UnreadableListener,
    UnreadableScan,
)

__all__ = [
    "GS",
    "SCHEMES",
    "Scan",
    "Scanner",
    "ScannerState",
    "StateListener",
    "UnreadableListener",
    "UnreadableScan",
    "open_scanner",
]

SCHEMES: dict[str, str] = {
    "serial": "drivers.scanners.serial",
    "evdev": "drivers.scanners.evdev",
    "script": "drivers.fakes.scanner",
}
"""URL scheme → module whose ``open_url(url, *, on_state, on_unreadable)`` opens it."""


def open_scanner(
    url: str,
    *,
    on_state: StateListener | None = None,
    on_unreadable: UnreadableListener | None = None,
) -> Scanner:
    """Open the scanner at ``url``; see docs/scanners.md for schemes and options.

    A device that is not (yet) plugged in is not an error: the scanner starts in state
    ``gone`` and keeps trying. ``on_state(state, detail)`` hears every state change;
    ``on_unreadable(UnreadableScan)`` hears each scan that was dropped because it could
    not be decoded (read() only ever returns good scans). Both are called on the
    thread that calls ``read``, except the first state reports, which come from here.

    Raises :class:`~drivers.errors.BadDeviceURL` for an unknown scheme or option.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    module_name = SCHEMES.get(scheme)
    if module_name is None:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise BadDeviceURL(f"{url!r}: unknown scanner type {scheme or '(none)'!r}; use {known}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadDeviceURL(
            f"{url!r}: {scheme}:// scanners need the {exc.name!r} package (pip extra 'pi')"
        ) from None
    scanner: Scanner = module.open_url(url, on_state=on_state, on_unreadable=on_unreadable)
    return scanner
