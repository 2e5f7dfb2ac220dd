"""Label printers, chosen by URL.

>>> printer = open_printer("file:///tmp/printed")          # doctest: +SKIP
>>> printer.print(PrintJob(job_id="w-1", images=[label]))  # doctest: +SKIP

The package is grouped by printer language, with what the languages share beside:

* :mod:`~drivers.printers.ql` — Brother QL: raster encoding, the status block, the
  printers (``ql+tcp``, ``ql+usb``, ``ql+file``);
* :mod:`~drivers.printers.zpl` — ZPL: ``^GF`` graphics, the ``~HS`` status, the
  printers (``zpl+tcp``, ``zpl+serial``);
* :mod:`~drivers.printers.file` — the virtual printer (``file://``);
* shared: :mod:`~drivers.printers.base` (the :class:`Printer` primitive and
  ``ManagedPrinter``, which every printer above builds on),
  :mod:`~drivers.printers.ledger` (job ledger, label stock),
  :mod:`~drivers.printers.url` (URL options), and the byte transports
  :mod:`~drivers.printers.transport` (TCP, device file, serial),
  :mod:`~drivers.printers.usb` (pyusb) and :mod:`~drivers.printers.snmp`.

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
    "ql+tcp": "drivers.printers.ql.printer:open_ql_printer",
    "ql+usb": "drivers.printers.ql.printer:open_ql_printer",
    "ql+file": "drivers.printers.ql.printer:open_ql_printer",
    "zpl+tcp": "drivers.printers.zpl.printer:open_zpl_printer",
    "zpl+serial": "drivers.printers.zpl.printer:open_zpl_printer",
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
