"""docs/scanners.md stays true to the code: every option and layout is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.scanners import SCHEMES
from drivers.scanners import evdev as evdev_scanner
from drivers.scanners import serial as serial_scanner
from drivers.scanners.keymaps import KEYMAPS

DOC = (Path(__file__).resolve().parents[3] / "docs" / "scanners.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "section,options",
    [("## `serial://`", serial_scanner.OPTIONS), ("## `evdev://`", evdev_scanner.OPTIONS)],
)
def test_every_url_option_is_in_its_table(section: str, options: dict[str, object]) -> None:
    text = DOC.split(section, 1)[1].split("\n## ", 1)[0]
    documented = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    assert documented == set(options)


def test_every_keymap_and_scheme_is_described() -> None:
    for name in KEYMAPS:
        assert f"- `{name}` —" in DOC
    for scheme in SCHEMES:
        assert f"`{scheme}:" in DOC
