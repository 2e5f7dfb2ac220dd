"""Parsing of scanner URL query options, shared by every backend.

Unknown options are refused rather than ignored: a typo such as ``terminater=lf``
would otherwise leave the bench silently misreading every scan.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

from drivers.errors import BadDeviceURL

__all__ = ["OptionSpec", "choice", "parse_options", "parse_seconds", "split_url"]

OptionSpec = Mapping[str, Callable[[str], Any]]
"""Option name → converter from the query string; a converter raises ValueError."""


def split_url(url: str, *, scheme: str) -> tuple[str, dict[str, list[str]]]:
    """Split ``scheme:///path?query`` (or ``scheme:path``) into the path and raw options."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != scheme:
        raise BadDeviceURL(f"{url!r} is not a {scheme}:// URL")
    # `serial://host/dev/x` would silently drop "host"; no scanner is reached over a host.
    if parts.netloc:
        raise BadDeviceURL(f"{url!r}: expected {scheme}:///absolute/path (three slashes)")
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    return urllib.parse.unquote(parts.path), query


def parse_options(
    url: str, raw: Mapping[str, list[str]], spec: OptionSpec, *, multi: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Convert raw query options with ``spec``; unknown or malformed ones raise BadDeviceURL.

    Names in ``multi`` may repeat and come back as a list; the others must appear once.
    """
    out: dict[str, Any] = {}
    for name, values in raw.items():
        convert = spec.get(name)
        if convert is None:
            known = ", ".join(sorted(spec))
            raise BadDeviceURL(f"{url!r}: unknown option {name!r} (known: {known})")
        if name not in multi and len(values) > 1:
            raise BadDeviceURL(f"{url!r}: option {name!r} given more than once")
        try:
            converted = [convert(v) for v in values]
        except ValueError as exc:
            raise BadDeviceURL(f"{url!r}: bad value for {name!r}: {exc}") from None
        out[name] = converted if name in multi else converted[0]
    return out


def parse_seconds(value: str) -> float:
    """A non-negative number of seconds."""
    seconds = float(value)
    if not seconds >= 0:  # also refuses NaN
        raise ValueError(f"{value!r} is not a non-negative number of seconds")
    return seconds


def choice(table: Mapping[str, Any]) -> Callable[[str], Any]:
    """A converter that looks the value up in ``table`` (case-insensitive)."""

    def convert(value: str) -> Any:
        try:
            return table[value.lower()]
        except KeyError:
            raise ValueError(f"{value!r} is not one of {', '.join(table)}") from None

    return convert
