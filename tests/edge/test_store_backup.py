"""``packline edge backup``: a consistent copy of the station store while it is written."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edge.clock import SystemClock
    from edge.store import StationStore
    store = StationStore(Path(sys.argv[1]), station="bench-07", clock=SystemClock())
    def ship(db, event):
        db.execute(
            "INSERT INTO shipments (order_no, parcel_no, parcel_count, tracking_no, carrier,"
            " service, operator, shipped_at, event_seq) VALUES (?, 1, 1, 't', 'c', 's', 'o', ?, ?)",
            (f"O{event.seq}", event.at_wall, event.seq))
    i = 0
    while True:
        store.record("t.padded", {"order_no": f"O{i}", "pad": "x" * 300}, write=ship)
        i += 1
        if i == 50:
            print("ready", flush=True)
        if i % 40 == 0:
            store.acknowledge(store.pending(limit=1)[0].seq + 10)
    """
)

PACKLINE = str(Path(".venv/bin/packline").resolve())


def _backup(data: Path, to: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PACKLINE, "edge", "backup", "--station", "bench-07", "--data-dir", str(data),
         "--to", str(to)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_backups_taken_while_the_agent_writes_are_whole(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data / "bench-07.sqlite")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        seen: list[int] = []
        for _ in range(5):
            done = _backup(data, tmp_path / "copies")
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("station bench-07: store copied to ")
            assert proc.poll() is None  # the writer went on meanwhile
            copies = sorted((tmp_path / "copies").glob("bench-07-*.sqlite"))
            copy = max(copies, key=lambda p: p.stat().st_mtime_ns)
            assert not Path(f"{copy}-wal").exists()
            db = sqlite3.connect(copy)
            try:
                assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                seqs = [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")]
                shipped = {r[0] for r in db.execute("SELECT event_seq FROM shipments")}
                unsent = [r[0] for r in db.execute("SELECT seq FROM outbox ORDER BY seq")]
            finally:
                db.close()
            # One transaction's worth at a time: every event with its shipment, no gap,
            # and the outbox the tail of the events.
            assert seqs == list(range(1, len(seqs) + 1))
            assert shipped == set(seqs)
            assert unsent == seqs[len(seqs) - len(unsent) :]
            assert str(len(unsent)) + " not yet acknowledged" in done.stdout
            seen.append(len(seqs))
            sums = (tmp_path / "copies" / f"{copy.name}.sha256").read_text().split()
            assert sums == [hashlib.sha256(copy.read_bytes()).hexdigest(), copy.name]
        assert seen == sorted(seen) and seen[-1] > seen[0]
    finally:
        proc.kill()
        proc.wait()


def test_no_store_is_one_line(tmp_path: Path) -> None:
    done = _backup(tmp_path / "empty", tmp_path / "copies")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"packline: error: no station store at {tmp_path / 'empty' / 'bench-07.sqlite'}: "
        "check station and data_dir (the store is made by the first `packline edge run`)"
    ]
