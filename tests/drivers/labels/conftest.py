"""Fixtures for the label tests: the example order, a fixed print time, barcode reading."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_ORDER = REPO / "docs" / "examples" / "order.json"
# Renderers are pure only with the print time given; every test passes this one.
PRINTED_AT = datetime(2026, 11, 23, 10, 30, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def order() -> dict[str, Any]:
    """The shared example order, as central sends it (a fresh copy per test)."""
    data: dict[str, Any] = json.loads(EXAMPLE_ORDER.read_text(encoding="utf-8"))
    return data


@pytest.fixture
def returned_order(order: dict[str, Any]) -> dict[str, Any]:
    """The example order with the optional after-sales ``return`` object (B8)."""
    order["return"] = {"outcome": "restock", "reason": "七天无理由退货", "rma_no": "RMA20261130001"}
    return order


@pytest.fixture
def printed_at() -> datetime:
    """The fixed print time of every rendering in these tests."""
    return PRINTED_AT


def _read_all(image: Image.Image) -> dict[str, str]:
    found = zxingcpp.read_barcodes(image.convert("L"))
    return {b.text: b.format.name for b in found}


@pytest.fixture
def read_barcodes() -> Callable[[Image.Image], dict[str, str]]:
    """Decode every barcode in an image with zxing-cpp: text → symbology name."""
    return _read_all
