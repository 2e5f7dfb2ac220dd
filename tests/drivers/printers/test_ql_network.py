"""Brother QL over real TCP + SNMP against the fake networked QL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from drivers.errors import CoverOpen, NoMedia, PrinterOffline, WrongMedia
from drivers.fakes.ql import FakeQLPrinter
from drivers.printers import PrinterState, PrintJob, open_printer
from drivers.printers.base import PrintResult

from .helpers import code128_label

LABEL = code128_label("SF100200300", width=696)


def _printer(fake: FakeQLPrinter, **options: object):  # type: ignore[no-untyped-def]
    return open_printer(fake.url, poll_interval=0.02, **options)


def test_status_before_and_after_a_verified_job(fake_ql: FakeQLPrinter) -> None:
    printer = _printer(fake_ql, roll_labels=200)
    before = printer.status()
    assert before.ready and before.model == "QL-820NWB" and before.media_width_mm == 62
    assert before.labels_left == 200
    result = printer.print(PrintJob(job_id="w-1", images=[LABEL, LABEL]))
    assert result.verified and not result.duplicate
    assert result.status is not None and result.status.page_count == before.page_count + 2  # type: ignore[operator]
    assert printer.status().labels_left == 198
    assert len(fake_ql.jobs) == 1 and fake_ql.jobs[0].printed == 2
    assert (Path(fake_ql.engine.out_dir or ".") / "job0001-1.png").exists()


def test_retry_is_not_printed_twice(fake_ql: FakeQLPrinter) -> None:
    printer = _printer(fake_ql)
    first = printer.print(PrintJob(job_id="w-2", images=[LABEL]))
    again = printer.print(PrintJob(job_id="w-2", images=[LABEL]))
    assert first.verified and again.duplicate and again.verified
    assert len(fake_ql.jobs) == 1
    reprint = printer.print(PrintJob(job_id="w-2", images=[LABEL], reprint=True))
    assert not reprint.duplicate and len(fake_ql.jobs) == 2


def test_ledger_file_survives_a_restart(fake_ql: FakeQLPrinter, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    _printer(fake_ql, ledger=str(ledger)).print(PrintJob(job_id="w-3", images=[LABEL]))
    again = _printer(fake_ql, ledger=str(ledger)).print(PrintJob(job_id="w-3", images=[LABEL]))
    assert again.duplicate and len(fake_ql.jobs) == 1


@pytest.mark.parametrize(
    ("fault", "error", "state", "words"),
    [
        ({"no_media": True}, NoMedia, PrinterState.NO_MEDIA, "load a new 62 mm roll"),
        ({"cover_open": True}, CoverOpen, PrinterState.COVER_OPEN, "close the cover"),
        ({"media": "29"}, WrongMedia, PrinterState.WRONG_MEDIA, "load the 62 mm roll"),
        ({"offline": True}, PrinterOffline, None, "does not answer"),
    ],
)
def test_faults_stop_the_job(
    fake_ql: FakeQLPrinter,
    fault: dict[str, object],
    error: type[Exception],
    state: PrinterState | None,
    words: str,
) -> None:
    printer = _printer(fake_ql, timeout=0.5)
    fake_ql.set(**fault)
    if state is None:
        with pytest.raises(error):
            printer.status()
    else:
        assert printer.status().state is state
    with pytest.raises(error, match=words):
        printer.print(PrintJob(job_id="w-4", images=[LABEL]))
    assert fake_ql.jobs == []
    assert printer.ledger.get("w-4") is None  # not recorded as printed
    fake_ql.set(no_media=False, cover_open=False, media="62", offline=False)
    assert printer.print(PrintJob(job_id="w-4", images=[LABEL])).verified


def test_fault_during_printing_raises(fake_ql: FakeQLPrinter) -> None:
    fake_ql.set(slow=30)
    printer = _printer(fake_ql)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(printer.print(PrintJob(job_id="w-5", images=[LABEL])))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert _wait(lambda: bool(fake_ql.engine.printing))
    fake_ql.set(cover_open=True)
    thread.join(timeout=60)
    assert isinstance(outcome[0], CoverOpen)
    assert printer.ledger.get("w-5") is None


def test_slow_printer_is_waited_for(fake_ql: FakeQLPrinter) -> None:
    fake_ql.set(slow=0.4)
    result = _printer(fake_ql).print(PrintJob(job_id="w-6", images=[LABEL]))
    assert result.verified


def test_unconfirmed_job_says_so_and_is_not_resent(fake_ql: FakeQLPrinter) -> None:
    fake_ql.set(slow=60)
    printer = _printer(fake_ql, confirm_timeout=0.3)
    result = printer.print(PrintJob(job_id="w-7", images=[LABEL]))
    assert not result.verified and "not confirmed" in result.detail
    again = printer.print(PrintJob(job_id="w-7", images=[LABEL]))
    assert again.duplicate and not again.verified and len(fake_ql.jobs) == 1


def test_printer_killed_mid_job(tmp_path: Path) -> None:
    fake = FakeQLPrinter(slow=60)
    printer = open_printer(fake.url, poll_interval=0.02, timeout=0.5)
    outcome: list[PrintResult | Exception] = []

    def run() -> None:
        try:
            outcome.append(printer.print(PrintJob(job_id="w-8", images=[LABEL])))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert _wait(lambda: bool(fake.jobs))
    fake.stop()
    thread.join(timeout=60)
    assert isinstance(outcome[0], PrinterOffline)
    assert printer.ledger.get("w-8") is None


def test_new_roll_resets_labels_left(fake_ql: FakeQLPrinter) -> None:
    printer = _printer(fake_ql, roll_labels=10)
    printer.print(PrintJob(job_id="w-9", images=[LABEL], copies=3))
    assert printer.status().labels_left == 7
    fake_ql.set(no_media=True)
    assert printer.status().state is PrinterState.NO_MEDIA
    fake_ql.set(no_media=False)
    assert printer.status().labels_left == 10


def test_endless_roll_length_estimate(fake_ql: FakeQLPrinter) -> None:
    printer = _printer(fake_ql, roll_length_mm=1000)
    assert printer.status().labels_left is None  # no label length known yet
    printer.print(PrintJob(job_id="w-10", images=[code128_label("X1", width=696, height=1181)]))
    assert printer.status().labels_left == 9  # 100 mm labels: 900 mm left


def _wait(predicate: object, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.01)
    return False


def test_status_is_not_ready_when_the_print_port_is_closed(fake_ql: FakeQLPrinter) -> None:
    # SNMP answers, but nothing listens where the jobs would go.
    from packline.devbroker import free_port

    closed = free_port()
    url = fake_ql.url.replace(f":{fake_ql.port}?", f":{closed}?")
    printer = open_printer(url)
    with pytest.raises(PrinterOffline, match=f"does not take print jobs on port {closed}"):
        printer.status()
    assert _printer(fake_ql).status().ready  # the real port: ready


def test_a_job_cut_off_by_a_crash_is_printed_once(fake_ql: FakeQLPrinter, tmp_path: Path) -> None:
    from drivers.printers.ledger import LedgerEntry

    ledger = tmp_path / "ledger.jsonl"
    before = _printer(fake_ql, ledger=str(ledger))
    counter = before.status().page_count
    # The station wrote the job down as being sent, the bytes went out, then it died.
    before.ledger.record(
        LedgerEntry(job_id="w-out", verified=False, labels=0, state="sending", page_count=counter)
    )
    _printer(fake_ql).print(PrintJob(job_id="w-out", images=[LABEL]))
    assert len(fake_ql.jobs) == 1

    after = _printer(fake_ql, ledger=str(ledger))  # the restarted station
    done = after.print(PrintJob(job_id="w-out", images=[LABEL]))
    assert done.duplicate and done.verified and "page counter" in done.detail
    assert len(fake_ql.jobs) == 1  # not printed a second time
    # A job that died before its bytes went out: the counter stands still, so it is sent.
    fresh = _printer(fake_ql, ledger=str(tmp_path / "other.jsonl"))
    fresh.ledger.record(
        LedgerEntry(
            job_id="w-new",
            verified=False,
            labels=0,
            state="sending",
            page_count=fresh.status().page_count,
        )
    )
    again = fresh.print(PrintJob(job_id="w-new", images=[LABEL]))
    assert not again.duplicate and len(fake_ql.jobs) == 2
