"""``packline demo``: broker, central, web page and three simulated stations."""

from __future__ import annotations

__all__ = ["demo"]


def demo() -> None:
    """Run the whole system locally."""
