"""Everything that touches a device: scanners, printers, and the pure label renderers.

This package knows nothing of orders' business rules, MQTT or storage. Devices are
chosen by URL (``serial:///dev/ttyACM0``, ``ql+tcp://host:9100``, ``file:///dir``) and
their libraries are imported lazily, so a server without pyserial or pyusb can still
import :mod:`drivers`.
"""

from drivers.errors import (
    BadDeviceURL,
    CoverOpen,
    DriverError,
    MissingLibrary,
    NoMedia,
    PrinterBusy,
    PrinterError,
    PrinterOffline,
    ScannerError,
    ScannerGone,
    WrongMedia,
)

__all__ = [
    "BadDeviceURL",
    "CoverOpen",
    "DriverError",
    "MissingLibrary",
    "NoMedia",
    "PrinterBusy",
    "PrinterError",
    "PrinterOffline",
    "ScannerError",
    "ScannerGone",
    "WrongMedia",
]
