"""The packages import from this repository, and the CLI answers."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from packline import __version__

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["packline", "edge", "drivers", "sync", "central", "web"])
def test_package_imports_from_this_repo(name: str) -> None:
    module = importlib.import_module(name)
    origin = Path(module.__file__ or "").resolve()
    # A stray distribution with the same top-level name would live in site-packages.
    assert origin.is_relative_to(REPO), f"{name} imported from {origin}, not {REPO}"


def _packline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "packline", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    out = _packline("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"packline {__version__}"


def test_help_lists_every_group() -> None:
    out = _packline("--help")
    assert out.returncode == 0
    for group in ("edge", "central", "label", "printer", "scanner", "demo"):
        assert group in out.stdout
