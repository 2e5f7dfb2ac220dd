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

from drivers.errors import BadDeviceURL, MissingLibrary
from drivers.printers.base import Printer, PrinterState, PrinterStatus, PrintJob, PrintResult
from drivers.printers.url import PrinterURL, parse_printer_url

__all__ = [
    "EXTRA",
    "LIBRARIES",
    "NEEDS",
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

#: Optional libraries printers use: import name → (package to install, what for).
LIBRARIES: dict[str, tuple[str, str]] = {
    "brother_ql": ("brother-ql-next", "Brother QL raster"),
    "usb": ("pyusb", "USB printers"),
    "serial": ("pyserial", "serial printers"),
}

#: URL scheme → the optional libraries (import names) it needs, checked on opening so
#: a missing one is said at start-up, not at the first label. ``file://`` needs
#: brother-ql-next only with ``encode=ql``; its encoder imports it when opened.
NEEDS: dict[str, tuple[str, ...]] = {
    "ql+tcp": ("brother_ql",),
    "ql+usb": ("brother_ql", "usb"),
    "ql+file": ("brother_ql",),
    "zpl+serial": ("serial",),
}

#: The package extra that installs every library in :data:`LIBRARIES`.
EXTRA = "pi"


def open_printer(url: str, **options: object) -> Printer:
    """Open the printer at ``url``; ``options`` add to (and override) its query string.

    Raises :class:`~drivers.errors.BadDeviceURL` for an unknown scheme or option, and
    :class:`~drivers.errors.MissingLibrary` when the printer needs an optional library
    that is not installed. Opening does not talk to the printer; :meth:`Printer.status`
    does.
    """
    parsed = parse_printer_url(url, options)
    target = SCHEMES.get(parsed.scheme)
    if target is None:
        known = ", ".join(sorted(SCHEMES))
        raise BadDeviceURL(f"{url}: unknown printer type {parsed.scheme!r} (known: {known})")
    for library in NEEDS.get(parsed.scheme, ()):
        try:
            importlib.import_module(library)
        except ImportError as exc:
            raise _missing(url, library, exc) from None
    module_name, factory_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
        factory: Callable[[PrinterURL], Printer] = getattr(module, factory_name)
        return factory(parsed)
    except ImportError as exc:
        # A library needed only with some options (file://?encode=ql); any other
        # import error is a fault in packline itself and is not hidden.
        library = (exc.name or "").partition(".")[0]
        if library not in LIBRARIES:
            raise
        raise _missing(url, library, exc) from None


def _missing(url: str, library: str, exc: ImportError) -> MissingLibrary:
    """The packer's words for ``library`` failing to import."""
    package, purpose = LIBRARIES[library]
    install = f"pip install 'packline[{EXTRA}]'"
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").partition(".")[0] == library:
        return MissingLibrary(
            f"{url}: needs the {package} package for {purpose}, which is not installed "
            f"— install it with: {install}"
        )
    # Installed but broken (one of its own dependencies is missing, say).
    return MissingLibrary(
        f"{url}: needs the {package} package for {purpose}, which cannot be imported "
        f"({exc}) — reinstall it with: {install}"
    )
