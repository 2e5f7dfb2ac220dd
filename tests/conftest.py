"""Shared fixtures: a real Mosquitto per test session (and per test when it is killed)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from packline.devbroker import MosquittoBroker

REPO = Path(__file__).resolve().parent.parent

# Started in the background by a shell without job control (`make test &` in a script),
# the suite inherits SIGINT ignored, and so would every process it starts: the tests
# that stop a demo, an agent or a CLI with Ctrl-C (SIGINT) would wait for it in vain.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    """A Mosquitto on a free port shared by the session; never the machine's own broker."""
    with MosquittoBroker(workdir=tmp_path_factory.mktemp("mosquitto")) as b:
        yield b


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A Mosquitto for one test, which the test may stop, kill and restart."""
    b = MosquittoBroker(workdir=tmp_path / "mosquitto").start()
    try:
        yield b
    finally:
        b.kill()
