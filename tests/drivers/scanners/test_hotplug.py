"""Backoff between reopen attempts, and listeners that misbehave."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.scanners import ScannerState, open_scanner
from drivers.scanners.hotplug import Backoff


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    low = Backoff(minimum=0.1, maximum=1.0, rng=lambda: 0.0)
    high = Backoff(minimum=0.1, maximum=1.0, rng=lambda: 1.0)
    assert [round(low.next_delay(), 3) for _ in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    assert [round(high.next_delay(), 3) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    high.reset()
    assert high.next_delay() == pytest.approx(0.1)


def test_backoff_never_reaches_zero_even_after_many_failures() -> None:
    backoff = Backoff(minimum=0.01, maximum=2.0, rng=lambda: 0.0)
    delays = [backoff.next_delay() for _ in range(10_000)]
    assert min(delays) == pytest.approx(0.005)
    assert max(delays) == pytest.approx(1.0)


@pytest.mark.parametrize("minimum,maximum", [(0.0, 1.0), (2.0, 1.0)])
def test_backoff_refuses_nonsense(minimum: float, maximum: float) -> None:
    with pytest.raises(ValueError):
        Backoff(minimum=minimum, maximum=maximum)


def test_a_port_already_in_use_is_gone_with_that_reason(pty_device: Any) -> None:
    url = f"serial://{pty_device.url_path}?reconnect_min=0.01&reconnect_max=0.05"
    details: list[str] = []
    with open_scanner(url) as first:
        assert first.state is ScannerState.READY
        with open_scanner(url, on_state=lambda s, d: details.append(d)) as second:
            assert second.state is ScannerState.GONE
    assert "in use by another program" in details[1]


def test_a_failing_listener_does_not_stop_the_scanner(pty_device: Any) -> None:
    def broken(state: ScannerState, detail: str) -> None:
        raise RuntimeError("listener bug")

    with open_scanner(f"serial://{pty_device.url_path}", on_state=broken) as scanner:
        pty_device.write(b"STILL-READS\r")
        scan = scanner.read(timeout=20.0)
    assert scan is not None and scan.text == "STILL-READS"
