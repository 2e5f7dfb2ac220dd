"""Fixtures for the printer tests: fake printers on free localhost ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.fakes.ql import FakeQLPrinter
from drivers.fakes.zpl import FakeZplPrinter


@pytest.fixture
def fake_ql(tmp_path: Path) -> Iterator[FakeQLPrinter]:
    """A networked fake QL-820NWB with 62 mm endless labels."""
    with FakeQLPrinter(out_dir=tmp_path / "fake-ql", slow=0.02) as fake:
        yield fake


@pytest.fixture
def fake_zpl(tmp_path: Path) -> Iterator[FakeZplPrinter]:
    """A fake ZPL printer."""
    with FakeZplPrinter(out_dir=tmp_path / "fake-zpl", slow=0.05) as fake:
        yield fake
