"""packline's own device errors.

Library errors (``OSError`` from a socket, ``serial.SerialException``,
``usb.core.USBError``) are translated into these where they enter, so nothing above
:mod:`drivers` ever sees them. Every message is written for the packer at the bench.
"""

from __future__ import annotations

from sync.errors import UserError

__all__ = [
    "BadDeviceURL",
    "CoverOpen",
    "DriverError",
    "LabelDoesNotFit",
    "MissingLibrary",
    "NoMedia",
    "PrinterBusy",
    "PrinterError",
    "PrinterOffline",
    "ScannerError",
    "ScannerGone",
    "WrongMedia",
]


class DriverError(UserError):
    """Base of every error raised by :mod:`drivers`; ``str()`` is a message for a person."""


class BadDeviceURL(DriverError, ValueError):
    """A device URL that cannot be understood (unknown scheme, bad option)."""


class MissingLibrary(DriverError):
    """A device needs an optional library that is not installed (pyusb, pyserial, ...).

    The message names the package and how to install it (the ``pi`` extra).
    """


class PrinterError(DriverError):
    """The printer cannot take or finish a job."""


class PrinterOffline(PrinterError):
    """The printer does not answer (unplugged, switched off, network down)."""


class NoMedia(PrinterError):
    """No labels loaded, or the roll ran out."""


class CoverOpen(PrinterError):
    """The printer's cover or print head is open."""


class WrongMedia(PrinterError):
    """The loaded labels are not the size the station is configured for."""


class PrinterBusy(PrinterError):
    """The printer is busy, paused or its buffer is full."""


class LabelDoesNotFit(DriverError):
    """The label content cannot fit on the label size; never silently cropped."""


class ScannerError(DriverError):
    """A scanner cannot be opened or read."""


class ScannerGone(ScannerError):
    """The scanner vanished (unplugged, ENODEV); the driver will try to reopen it."""
