"""The packing station's agent: scans in, labels out, every fact recorded.

The bench never waits on the network: a scan is looked up in the local orders,
audited (B1), its waybill rendered and printed (B2, B3) and the shipment recorded
(B5) in the station store; the outbox pump delivers the records to central whenever
it can.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from drivers.errors import DriverError, LabelDoesNotFit, PrinterError
from drivers.labels import render
from drivers.printers import open_printer
from drivers.printers.base import Printer, PrinterStatus, PrintJob, PrintResult
from drivers.scanners import open_scanner
from drivers.scanners.base import Scanner, ScannerState, UnreadableScan
from edge.audit import audit
from edge.clock import Clock, SystemClock
from edge.settings import StationSettings
from edge.store import StationStore, Writer
from packline import __version__
from sync.messages import Event
from sync.order import Order
from sync.pump import OutboxPump

__all__ = ["LABEL_PRINTED", "SCAN_REJECTED", "SHIPPED", "Agent", "Outcome"]

log = logging.getLogger(__name__)
bench = logging.getLogger("packline.bench")

SHIPPED = "shipment.shipped"
LABEL_PRINTED = "label.printed"
SCAN_REJECTED = "scan.rejected"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the packer is told about one scan."""

    ok: bool
    message: str
    order_no: str | None = None


class Agent:
    """One packing station. ``handle_scan`` is the whole bench step, synchronously."""

    def __init__(
        self,
        *,
        settings: StationSettings,
        clock: Clock | None = None,
        scanner: Scanner | None = None,
        printer: Printer | None = None,
        feedback: Callable[[Outcome], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.store = StationStore(settings.db_path, station=settings.station, clock=self.clock)
        self.printer = printer or open_printer(settings.printer, **_ledger(settings))
        self.feedback = feedback or _log_feedback
        self._printer_state = "unknown"
        self._printer_detail = ""
        self._labels_left: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.pump = OutboxPump(
            outbox=self.store,
            site=settings.site,
            station=settings.station,
            mqtt_url=settings.mqtt_url,
            version=__version__,
            health=self.health,
            resend_after=settings.resend_after,
        )
        # Opened now so a bad URL stops the agent before anything runs; a scanner
        # that is not plugged in yet is a state ("gone"), not an error.
        self.scanner = scanner or open_scanner(
            settings.scanner,
            on_state=self._on_scanner_state,
            on_unreadable=self._on_unreadable,
        )

    # -- the bench step ----------------------------------------------------------

    def handle_scan(self, text: str) -> Outcome:
        """Look up, audit, print and record one scanned order (or waybill) number."""
        code = text.strip()
        with self._lock:
            outcome = self._handle(code)
        self.feedback(outcome)
        self.pump.notify()
        return outcome

    def _reject(self, code: str, reason: str, order_no: str | None = None) -> Outcome:
        self.store.record(SCAN_REJECTED, {"text": code, "reason": reason, "order_no": order_no})
        return Outcome(ok=False, message=reason, order_no=order_no)

    def _handle(self, code: str) -> Outcome:
        if not code:
            return Outcome(ok=False, message="empty scan ignored")
        order = self.store.find_order(code)
        if order is None:
            return self._reject(code, f"unknown order {code}: not in this station's orders")
        reasons = audit(order)
        if reasons:
            return self._reject(
                code, f"cannot pack {order.order_no}: {'; '.join(reasons)}", order.order_no
            )
        shipped = self.store.shipments(order.order_no)
        if len(shipped) >= order.parcels:
            when = datetime.fromtimestamp(shipped[-1].shipped_at, UTC).strftime("%H:%M UTC")
            return self._reject(code, f"{order.order_no} already shipped at {when}", order.order_no)
        done = {s.parcel_no for s in shipped}
        for parcel_no in range(1, order.parcels + 1):
            if parcel_no in done:
                continue
            try:
                result = self._print_waybill(order, parcel_no)
            except PrinterError as exc:
                self._printer_state = "fault"
                self._printer_detail = str(exc)
                return self._reject(code, f"printer: {exc}", order.order_no)
            except (LabelDoesNotFit, ValueError) as exc:
                return self._reject(code, f"waybill for {order.order_no}: {exc}", order.order_no)
            self._record_shipped(order, parcel_no, result)
        parcels = f" in {order.parcels} parcels" if order.parcels > 1 else ""
        return Outcome(
            ok=True,
            message=f"{order.order_no} shipped{parcels}: {order.carrier} {order.tracking_no}",
            order_no=order.order_no,
        )

    def _job_id(self, order: Order, parcel_no: int) -> str:
        # Deterministic: a retry after a crash reuses it and the printer's ledger
        # refuses to print it twice.
        return f"{order.order_no}-r{order.revision}-waybill-{parcel_no}"

    def _print_waybill(self, order: Order, parcel_no: int) -> PrintResult:
        image = render(
            "waybill",
            order,
            size=self.settings.label_size,
            dpi=self.settings.label_dpi,
            parcel=(parcel_no, order.parcels) if order.parcels > 1 else None,
            # The packer and the carrier read local time on the label.
            printed_at=datetime.fromtimestamp(self.clock.wall(), UTC).astimezone(),
        )
        result = self.printer.print(PrintJob(job_id=self._job_id(order, parcel_no), images=[image]))
        self._note_printer(result)
        return result

    def _note_printer(self, result: PrintResult) -> None:
        if result.status is not None:
            self._remember(result.status)
        else:
            self._printer_state, self._printer_detail = "ready", result.detail

    def _remember(self, status: PrinterStatus) -> None:
        self._printer_state = status.state.value
        self._printer_detail = status.detail
        self._labels_left = status.labels_left

    def _record_shipped(self, order: Order, parcel_no: int, result: PrintResult) -> None:
        """Record the printed waybill and the shipped parcel in one transaction (B5)."""
        job_id = result.job_id
        operator = self.settings.operator or self.settings.station
        facts: list[tuple[str, dict[str, Any], Writer | None]] = []
        if not self.store.printed(job_id):

            def add_print(db: sqlite3.Connection, event: Event) -> None:
                db.execute(
                    "INSERT INTO prints (job_id, order_no, kind, verified, printed_at, event_seq)"
                    " VALUES (:job_id, :order_no, :kind, :verified, :at_wall, :seq)",
                    {**event.payload, "at_wall": event.at_wall, "seq": event.seq},
                )

            printed: dict[str, Any] = {
                "order_no": order.order_no,
                "job_id": job_id,
                "kind": "waybill",
                "verified": result.verified,
                "duplicate": result.duplicate,
            }
            facts.append((LABEL_PRINTED, printed, add_print))

        def add_shipment(db: sqlite3.Connection, event: Event) -> None:
            # The row is the event's payload: what central receives is what was stored.
            db.execute(
                "INSERT INTO shipments (order_no, parcel_no, parcel_count, tracking_no, carrier,"
                " service, operator, shipped_at, event_seq) VALUES (:order_no, :parcel_no,"
                " :parcel_count, :tracking_no, :carrier, :service, :operator, :at_wall, :seq)",
                {**event.payload, "at_wall": event.at_wall, "seq": event.seq},
            )

        shipped: dict[str, Any] = {
            "order_no": order.order_no,
            "tracking_no": order.tracking_no,
            "carrier": order.carrier,
            "service": order.service,
            "parcel_no": parcel_no,
            "parcel_count": order.parcels,
            "operator": operator,
            "print_job_id": job_id,
            "print_verified": result.verified,
        }
        facts.append((SHIPPED, shipped, add_shipment))
        self.store.record_all(facts)

    # -- health ------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The device part of the station status."""
        return {
            "printer": self._printer_state,
            "printer_detail": self._printer_detail,
            "scanner": self.scanner.state.value,
            "labels_left": self._labels_left,
        }

    def check_printer(self) -> None:
        """Read the printer's status now (B2) and remember it for the status report."""
        try:
            status = self.printer.status()
        except DriverError as exc:
            self._printer_state, self._printer_detail = "offline", str(exc)
            return
        self._remember(status)

    def _on_unreadable(self, scan: UnreadableScan) -> None:
        # Not a fact about any order, so no event: the packer is told to scan again.
        self.feedback(Outcome(ok=False, message=f"unreadable scan ({scan.reason}): scan again"))

    def _on_scanner_state(self, state: ScannerState, detail: str) -> None:
        log.info("scanner %s%s", state.value, f": {detail}" if detail else "")
        self.pump.notify()

    # -- running -----------------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop`: scanner loop in this thread, sync in the background."""
        log.info(
            "station %s (site %s): %d orders, backlog %d, scanner %s, printer %s",
            self.settings.station,
            self.settings.site,
            self.store.order_count(),
            self.store.backlog(),
            self.settings.scanner,
            self.settings.printer,
        )
        self.check_printer()
        self.pump.start()
        scanner = self.scanner
        ticks = 0
        try:
            while not self._stop.is_set():
                scan = scanner.read(timeout=0.5)
                if scan is not None:
                    self.handle_scan(scan.text)
                ticks += 1
                if ticks % 30 == 0:
                    self.check_printer()
        finally:
            scanner.close()
            self.pump.stop()
            self.printer.close()
            self.store.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stop.set()


def _ledger(settings: StationSettings) -> dict[str, object]:
    """A persistent print ledger in the station's data dir, unless the URL names one.

    The printer refuses a job id it already printed, but only a ledger on disk keeps
    that promise across a crash between printing a label and recording it.
    """
    if "ledger=" in settings.printer:
        return {}
    return {"ledger": settings.data_dir / f"{settings.station}.printed.jsonl"}


def _log_feedback(outcome: Outcome) -> None:
    if outcome.ok:
        bench.info("OK      %s", outcome.message)
    else:
        bench.warning("REFUSED %s", outcome.message)
