"""Which orders get a second check before hand-over (B7), chosen so anyone can check.

The choice is a pure function of the order number, the site's seed and the rate: the
bench flags an order when the first 8 bytes of SHA-256 over ``"{seed}:{order_no}"``,
read as a fraction of 2**64, fall below ``rate``. Central (or an auditor with a
spreadsheet) recomputes it from the same three values and sees whether a bench skipped
an order it had to check.
"""

from __future__ import annotations

import hashlib

__all__ = ["qc_fraction", "qc_selected"]


def qc_fraction(order_no: str, *, seed: str) -> float:
    """Where ``order_no`` falls in [0, 1) for the site ``seed``."""
    digest = hashlib.sha256(f"{seed}:{order_no}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def qc_selected(order_no: str, *, seed: str, rate: float) -> bool:
    """True when ``order_no`` must pass a second person's check (``rate`` in [0, 1])."""
    if rate <= 0:
        return False
    return rate >= 1 or qc_fraction(order_no, seed=seed) < rate
