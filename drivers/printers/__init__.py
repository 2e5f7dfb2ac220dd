"""Printers: one module per transport, chosen by URL.

>>> printer = open_printer("file:///tmp/printed")          # doctest: +SKIP
>>> printer.print(PrintJob(job_id="w-1", images=[label]))  # doctest: +SKIP

Each scheme's module (and its library: pyusb, pyserial, brother-ql-next) is imported
only when a URL of that scheme is opened.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from drivers.errors import BadDeviceURL
from drivers.printers.base import Printer, PrinterState, PrinterStatus, PrintJob, PrintResult
from drivers.printers.url import PrinterURL, parse_printer_url

__all__ = [
    "SCHEMES",
    "PrintJob",
    "PrintResult",
    "Printer",
    "PrinterState",
    "PrinterStatus",
    "open_printer",
]

#: URL scheme → "module:factory"; the factory takes a :class:`PrinterURL`.
SCHEMES: dict[str, str] = {
    "file": "drivers.printers.file:open_file_printer",
    "ql+tcp": "drivers.printers.qlprinter:open_ql_printer",
    "ql+usb": "drivers.printers.qlprinter:open_ql_printer",
    "ql+file": "drivers.printers.qlprinter:open_ql_printer",
    "zpl+tcp": "drivers.printers.zplprinter:open_zpl_printer",
    "zpl+serial": "drivers.printers.zplprinter:open_zpl_printer",
}


def open_printer(url: str, **options: object) -> Printer:
    """Open the printer at ``url``; ``options`` add to (and override) its query string.

    Raises :class:`~drivers.errors.BadDeviceURL` for an unknown scheme or option.
    Opening does not talk to the printer; :meth:`Printer.status` does.
    """
    parsed = parse_printer_url(url, options)
    target = SCHEMES.get(parsed.scheme)
    if target is None:
        known = ", ".join(sorted(SCHEMES))
        raise BadDeviceURL(f"{url}: unknown printer type {parsed.scheme!r} (known: {known})")
    module_name, factory_name = target.split(":")
    module = importlib.import_module(module_name)
    factory: Callable[[PrinterURL], Printer] = getattr(module, factory_name)
    return factory(parsed)
