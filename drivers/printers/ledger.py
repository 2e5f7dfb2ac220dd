"""The bookkeeping every printer shares: the job ledger (idempotent retry) and the label stock.

A station retries a job when it is unsure whether it printed (timeout, restart). The
ledger remembers every job id that was sent and finished, so the retry returns
``duplicate=True`` instead of a second label. A job is also written down as
``sending`` (with the printer's page counter, where it has one) before its bytes go
out: if the station dies mid-job, the retry asks the counter whether the label came
out rather than printing it blind. With ``ledger=/path`` the ledger is an
append-only JSON-lines file, flushed and fsynced per entry, so it survives a station
restart or power cut; without it the ledger lives in memory.

The label stock estimate counts what was printed against the configured roll
(``roll_labels=N`` or ``roll_length_mm=M``) and starts again from a full roll when the
printer reports that media was taken out and put back.

:class:`~drivers.printers.base.ManagedPrinter` wires both into every printer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path

__all__ = [
    "JobLedger",
    "LabelStock",
    "LedgerEntry",
    "stock_and_ledger",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One finished job: whether the printer confirmed it, and how many labels."""

    job_id: str
    verified: bool
    labels: int
    detail: str = ""
    #: ``done`` (sent and finished), ``sending`` (bytes may be on their way: the
    #: station died before it knew), or ``failed`` (nothing to remember).
    state: str = "done"
    #: The printer's page counter before the job was sent, when it has one.
    page_count: int | None = None


class JobLedger:
    """Job ids already printed; in memory, or persisted to an append-only file."""

    def __init__(self, *, path: Path | None = None) -> None:
        self._path = path
        self._entries: dict[str, LedgerEntry] = {}
        self._lock = threading.Lock()
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                raw = json.loads(line)
                count = raw.get("page_count")
                entry = LedgerEntry(
                    job_id=str(raw["job_id"]),
                    verified=bool(raw["verified"]),
                    labels=int(raw.get("labels", 1)),
                    detail=str(raw.get("detail", "")),
                    state=str(raw.get("state", "done")),
                    page_count=None if count is None else int(count),
                )
            except (ValueError, KeyError, TypeError):
                # A power cut can leave the last line half written; that job was not
                # acknowledged to the caller, so forgetting it is the safe side.
                continue
            self._entries[entry.job_id] = entry

    def get(self, job_id: str) -> LedgerEntry | None:
        """The entry for ``job_id`` (done, or being sent), or None when it never printed."""
        with self._lock:
            entry = self._entries.get(job_id)
        return None if entry is None or entry.state == "failed" else entry

    def record(self, entry: LedgerEntry) -> None:
        """Remember ``entry``; with a file, it is on disk when this returns."""
        with self._lock:
            self._entries[entry.job_id] = entry
            if self._path is None:
                return
            self._path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps(dataclasses.asdict(entry), ensure_ascii=False) + "\n"
            with open(self._path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

    def __len__(self) -> int:
        with self._lock:
            return sum(e.state == "done" for e in self._entries.values())


class LabelStock:
    """Estimate of labels left on the roll, from the configured roll and what printed.

    ``roll_labels`` counts die-cut labels; ``roll_length_mm`` measures an endless
    roll, and labels left is then the remaining length over the last label's length.
    The state is kept beside the ledger file (``<ledger>.stock.json``) when there is
    one, so a restart does not refill the roll.
    """

    def __init__(
        self,
        *,
        roll_labels: int | None = None,
        roll_length_mm: float | None = None,
        path: Path | None = None,
    ) -> None:
        self.roll_labels = roll_labels
        self.roll_length_mm = roll_length_mm
        self._path = path
        self.used_labels = 0
        self.used_mm = 0.0
        self.last_label_mm: float | None = None
        self._media_was_out = False
        self._lock = threading.Lock()
        if path is not None and path.exists():
            try:
                raw = json.loads(path.read_text(encoding="utf-8"))
                self.used_labels = int(raw["used_labels"])
                self.used_mm = float(raw["used_mm"])
                last = raw.get("last_label_mm")
                self.last_label_mm = None if last is None else float(last)
            except (ValueError, KeyError, TypeError):
                pass

    @property
    def configured(self) -> bool:
        """True when a roll size was configured, so an estimate exists."""
        return self.roll_labels is not None or self.roll_length_mm is not None

    def labels_left(self) -> int | None:
        """Estimated labels left, or None without a configured roll."""
        with self._lock:
            if self.roll_labels is not None:
                return max(0, self.roll_labels - self.used_labels)
            if self.roll_length_mm is not None:
                if not self.last_label_mm:
                    return None
                return max(0, int((self.roll_length_mm - self.used_mm) // self.last_label_mm))
            return None

    def consume(self, *, labels: int, length_mm: float | None) -> None:
        """Count ``labels`` printed, each ``length_mm`` long when known."""
        with self._lock:
            self.used_labels += labels
            if length_mm is not None and length_mm > 0:
                self.used_mm += labels * length_mm
                self.last_label_mm = length_mm
            self._save()

    def observe(self, *, media_out: bool, ready: bool) -> None:
        """Feed a status reading: media out, then ready again, means a fresh roll."""
        with self._lock:
            if media_out:
                self._media_was_out = True
            elif ready and self._media_was_out:
                self._media_was_out = False
                self.used_labels = 0
                self.used_mm = 0.0
                self._save()

    def refill(self) -> None:
        """Start again from a full roll (the packer says a new roll is loaded)."""
        with self._lock:
            self.used_labels = 0
            self.used_mm = 0.0
            self._save()

    def _save(self) -> None:
        if self._path is None:
            return
        state = {
            "used_labels": self.used_labels,
            "used_mm": self.used_mm,
            "last_label_mm": self.last_label_mm,
        }
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self._path)


def stock_and_ledger(
    *, ledger_path: Path | None, roll_labels: int | None, roll_length_mm: float | None
) -> tuple[JobLedger, LabelStock]:
    """The ledger and stock for a printer built from URL options."""
    stock_path = None
    if ledger_path is not None:
        stock_path = ledger_path.with_name(ledger_path.name + ".stock.json")
    return (
        JobLedger(path=ledger_path),
        LabelStock(roll_labels=roll_labels, roll_length_mm=roll_length_mm, path=stock_path),
    )
