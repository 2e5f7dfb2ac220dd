"""Printer URLs and their options: parsed once, typed, and strict.

A misspelt option (``lable=62``) must not be silently ignored — the station would
then print on the wrong size — so every option a scheme does not know is a
:class:`~drivers.errors.BadDeviceURL`. Options come from the URL's query string and
from keyword arguments of :func:`drivers.printers.open_printer` (keywords win).
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path

from drivers.errors import BadDeviceURL

__all__ = ["PrinterURL", "parse_printer_url"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrinterURL:
    """A parsed printer URL: scheme, host/port or path, and raw options."""

    url: str
    scheme: str
    host: str
    port: int | None
    netloc: str
    path: str
    options: Mapping[str, object]

    def check_options(self, allowed: Iterable[str]) -> None:
        """Raise :class:`BadDeviceURL` for any option the scheme does not know."""
        unknown = sorted(set(self.options) - set(allowed))
        if unknown:
            known = ", ".join(sorted(allowed)) or "none"
            raise BadDeviceURL(
                f"{self.url}: unknown printer option {', '.join(unknown)} (known: {known})"
            )

    def tcp_address(self, default_port: int) -> tuple[str, int]:
        """(host, port) of a network printer; raise for a missing host or bad port."""
        if not self.host:
            raise BadDeviceURL(f"{self.url}: a network printer needs a host, e.g. //HOST:9100")
        after_host = self.netloc.rsplit("]", 1)[-1]
        port_text = after_host.rpartition(":")[2]
        if self.port == 0 or (self.port is None and port_text.isdigit()):
            raise BadDeviceURL(f"{self.url}: port {port_text} is out of range (1 to 65535)")
        if self.port is None and after_host.count(":"):
            raise BadDeviceURL(f"{self.url}: the port must be a number")
        return self.host, self.port or default_port

    def _raw(self, name: str) -> object | None:
        return self.options.get(name)

    def text(self, name: str, default: str) -> str:
        """Option ``name`` as text."""
        value = self._raw(name)
        return default if value is None else str(value)

    def optional_text(self, name: str) -> str | None:
        """Option ``name`` as text, or None when not given."""
        value = self._raw(name)
        return None if value is None else str(value)

    def integer(self, name: str, default: int | None, *, minimum: int = 0) -> int | None:
        """Option ``name`` as an integer not below ``minimum``."""
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(str(value), 0) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise BadDeviceURL(f"{self.url}: option {name} must be a whole number") from None
        if number < minimum:
            raise BadDeviceURL(f"{self.url}: option {name} must be at least {minimum}")
        return number

    def number(self, name: str, default: float) -> float:
        """Option ``name`` as a non-negative number (seconds, millimetres)."""
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BadDeviceURL(f"{self.url}: option {name} must be a number") from None
        if number < 0:
            raise BadDeviceURL(f"{self.url}: option {name} must not be negative")
        return number

    def flag(self, name: str, default: bool) -> bool:
        """Option ``name`` as a yes/no flag (1/0, true/false, yes/no, on/off)."""
        value = self._raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise BadDeviceURL(f"{self.url}: option {name} must be yes or no, not {value!r}")

    def path_option(self, name: str) -> Path | None:
        """Option ``name`` as a filesystem path, or None."""
        value = self._raw(name)
        return None if value in (None, "") else Path(str(value))


def parse_printer_url(url: str, options: Mapping[str, object] | None = None) -> PrinterURL:
    """Split ``url`` into scheme, address and options (query merged with ``options``)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise BadDeviceURL(f"{url}: not a printer URL ({exc})") from None
    try:
        port = parts.port
    except ValueError:
        # ql+usb://0x04f9:0x209d has vendor:product where a port would be.
        port = None
    if not parts.scheme:
        raise BadDeviceURL(f"{url}: not a printer URL (expected e.g. ql+tcp://host:9100)")
    merged: dict[str, object] = {}
    for key, values in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items():
        if len(values) != 1:
            raise BadDeviceURL(f"{url}: option {key} given more than once")
        merged[key] = values[0]
    merged.update({k: v for k, v in (options or {}).items() if v is not None})
    return PrinterURL(
        url=url,
        scheme=parts.scheme.lower(),
        host=parts.hostname or "",
        port=port,
        netloc=parts.netloc,
        path=urllib.parse.unquote(parts.path),
        options=merged,
    )
