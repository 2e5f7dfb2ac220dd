"""``ql+usb://0x04f9:0x209d[/serial]``: a Brother QL over pyusb, as a :class:`Stream`.

Only the bulk endpoints are touched here; the status protocol above is shared with
``ql+file`` and tested against the fake USB-style QL. This class itself needs real
hardware and is not exercised by the test suite.
"""

from __future__ import annotations

import time
from typing import Any

from drivers.errors import BadDeviceURL, PrinterOffline
from drivers.printers.transport import Stream

__all__ = ["UsbStream", "parse_usb_address"]


def parse_usb_address(host_port: str, path: str) -> tuple[int, int, str | None]:
    """``0x04f9:0x209d`` and optional ``/serial`` → (vendor, product, serial)."""
    try:
        vendor_text, product_text = host_port.split(":")
        vendor, product = int(vendor_text, 16), int(product_text, 16)
    except ValueError:
        raise BadDeviceURL(
            f"USB printer address {host_port!r} must be vendor:product, e.g. 0x04f9:0x209d"
        ) from None
    serial = path.strip("/") or None
    return vendor, product, serial


class UsbStream(Stream):
    """Bulk OUT/IN endpoints of a USB printer-class device."""

    def __init__(self, *, vendor: int, product: int, serial: str | None = None) -> None:
        import usb.core
        import usb.util

        self.where = f"USB {vendor:04x}:{product:04x}" + (f" ({serial})" if serial else "")
        self._usb_error: type[Exception] = usb.core.USBError
        try:
            found = usb.core.find(idVendor=vendor, idProduct=product, find_all=True)
            devices = [
                d for d in (found or []) if serial is None or _serial_of(d, usb.util) == serial
            ]
        except (usb.core.NoBackendError, usb.core.USBError, ValueError) as exc:
            raise PrinterOffline(f"Cannot look for USB printers ({exc})") from None
        if not devices:
            raise PrinterOffline(
                f"Printer not found on {self.where} — check the USB cable and power"
            )
        self.device: Any = devices[0]
        try:
            if self.device.is_kernel_driver_active(0):
                self.device.detach_kernel_driver(0)
            self.device.set_configuration()
            interface = self.device.get_active_configuration()[(0, 0)]
            direction = usb.util.endpoint_direction
            self.ep_out: Any = usb.util.find_descriptor(
                interface, custom_match=lambda e: direction(e.bEndpointAddress) == 0
            )
            self.ep_in: Any = usb.util.find_descriptor(
                interface, custom_match=lambda e: direction(e.bEndpointAddress) == 0x80
            )
        except (usb.core.USBError, NotImplementedError) as exc:
            raise PrinterOffline(f"Cannot open the printer on {self.where} ({exc})") from None
        if self.ep_out is None or self.ep_in is None:
            raise PrinterOffline(f"{self.where} is not a printer (no bulk endpoints)")

    def write(self, data: bytes) -> None:
        """Write all of ``data`` to the bulk OUT endpoint."""
        try:
            view = memoryview(data)
            while view:
                written = int(self.ep_out.write(bytes(view[:16384]), timeout=15000))
                view = view[written:]
        except (self._usb_error, OSError) as exc:
            raise PrinterOffline(f"Printer on {self.where} stopped answering ({exc})") from None

    def read(self, size: int, *, timeout: float) -> bytes:
        """Poll the bulk IN endpoint until data or ``timeout``."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            try:
                data = bytes(self.ep_in.read(max(size, 32), timeout=20))
            except self._usb_error as exc:
                if getattr(exc, "errno", None) in (110, None) or "timeout" in str(exc).lower():
                    data = b""
                else:
                    raise PrinterOffline(
                        f"Printer on {self.where} stopped answering ({exc})"
                    ) from None
            if data or time.monotonic() >= deadline:
                return data
            time.sleep(0.01)

    def close(self) -> None:
        """Release the device."""
        try:
            import usb.util

            usb.util.dispose_resources(self.device)
        except Exception:
            pass


def _serial_of(device: Any, util: Any) -> str | None:
    try:
        return str(util.get_string(device, device.iSerialNumber))
    except Exception:
        return None
