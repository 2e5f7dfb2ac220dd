"""docs/station.md stays true: its settings table is exactly StationSettings' fields."""

from __future__ import annotations

import re
from pathlib import Path

from edge.settings import StationSettings
from sync.events import CATALOGUE

DOC = (Path(__file__).resolve().parents[2] / "docs" / "station.md").read_text()


def test_settings_table_matches_the_settings_class() -> None:
    section = DOC.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
    assert documented == set(StationSettings.model_fields)


def test_every_event_type_is_named_and_the_catalogue_linked() -> None:
    assert "(events.md)" in DOC
    for event_type in CATALOGUE:
        assert f"`{event_type}`" in DOC
