"""Kill -9 the agent at random points of scripted orders (30 times): every confirmed
parcel exists once, no order is shipped without its events, the order in progress
resumes. ``bench/chaos_bench.py`` runs the same with 200 and more kills."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chaos import BenchChaos

pytestmark = pytest.mark.slow

KILLS = 30


def test_kill_minus_nine_at_random_points_loses_and_doubles_nothing(tmp_path: Path) -> None:
    chaos = BenchChaos(tmp_path, orders=24, seed=9)
    try:
        while chaos.result.kills < KILLS:
            chaos.round()
        chaos.finish()
        result = chaos.check()
    finally:
        chaos.close()
    assert result.problems == []
    assert result.kills >= KILLS
    assert result.rounds_mid_order >= 5 and result.resumed_as_left >= 5, result
    # Every order was finished in the end, each parcel's waybill printed exactly once.
    assert result.orders_shipped == 24, result
    assert result.waybill_pages == result.parcels_shipped
