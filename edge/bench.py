"""The bench step: scan → look up → audit (B1) → print (B2, B3) → record (B5).

One scanned order (or waybill) number in, one :class:`Outcome` for the packer out,
every fact recorded in the station store. It never waits on the network; it does not
know about threads, the uplink or the scanner, so it can grow into the bench's state
machine.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime

from drivers.errors import LabelDoesNotFit, PrinterError
from drivers.labels import render
from drivers.printers.base import Printer, PrintJob, PrintResult
from drivers.scanners.base import UnreadableScan
from edge.audit import audit
from edge.clock import Clock
from edge.health import DeviceHealth
from edge.store import Fact, StationStore
from sync.events import LabelPrinted, ScanRejected, ShipmentShipped
from sync.messages import Event
from sync.order import Order

__all__ = ["Bench", "Outcome", "unreadable"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the packer is told about one scan."""

    ok: bool
    message: str
    order_no: str | None = None


def unreadable(scan: UnreadableScan) -> Outcome:
    """What the packer is told about a scan that could not be decoded.

    Not a fact about any order, so nothing is recorded: the packer scans again.
    """
    return Outcome(ok=False, message=f"unreadable scan ({scan.reason}): scan again")


class Bench:
    """The bench step of one station. Not thread-safe: one scan at a time."""

    def __init__(
        self,
        *,
        store: StationStore,
        printer: Printer,
        devices: DeviceHealth,
        clock: Clock,
        operator: str,
        label_size: str,
        label_dpi: int,
    ) -> None:
        self.store = store
        self.printer = printer
        self.devices = devices
        self.clock = clock
        self.operator = operator
        self.label_size = label_size
        self.label_dpi = label_dpi

    def handle(self, text: str) -> Outcome:
        """Look up, audit, print and record one scanned order (or waybill) number."""
        code = text.strip()
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
                self.devices.note_fault(str(exc))
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

    def _reject(self, code: str, reason: str, order_no: str | None = None) -> Outcome:
        self.store.record(ScanRejected(text=code, reason=reason, order_no=order_no))
        return Outcome(ok=False, message=reason, order_no=order_no)

    @staticmethod
    def job_id(order: Order, parcel_no: int) -> str:
        """The waybill's print job id: deterministic, so a retry after a crash reuses
        it and the printer's ledger refuses to print it twice."""
        return f"{order.order_no}-r{order.revision}-waybill-{parcel_no}"

    def _print_waybill(self, order: Order, parcel_no: int) -> PrintResult:
        image = render(
            "waybill",
            order,
            size=self.label_size,
            dpi=self.label_dpi,
            parcel=(parcel_no, order.parcels) if order.parcels > 1 else None,
            # The packer and the carrier read local time on the label.
            printed_at=datetime.fromtimestamp(self.clock.wall(), UTC).astimezone(),
        )
        job = PrintJob(job_id=self.job_id(order, parcel_no), images=[image])
        result = self.printer.print(job)
        self.devices.note_print(result)
        return result

    def _record_shipped(self, order: Order, parcel_no: int, result: PrintResult) -> None:
        """Record the printed waybill and the shipped parcel in one transaction (B5)."""
        facts: list[Fact] = []
        if not self.store.printed(result.job_id):
            printed = LabelPrinted(
                order_no=order.order_no,
                job_id=result.job_id,
                kind="waybill",
                verified=result.verified,
                duplicate=result.duplicate,
            )
            facts.append((printed, _add_print))
        shipped = ShipmentShipped(
            order_no=order.order_no,
            tracking_no=order.tracking_no,
            carrier=order.carrier,
            service=order.service,
            parcel_no=parcel_no,
            parcel_count=order.parcels,
            operator=self.operator,
            print_job_id=result.job_id,
            print_verified=result.verified,
        )
        facts.append((shipped, _add_shipment))
        self.store.record_all(facts)


# The rows are the events' payloads: what central receives is what was stored.


def _add_print(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        "INSERT INTO prints (job_id, order_no, kind, verified, printed_at, event_seq)"
        " VALUES (:job_id, :order_no, :kind, :verified, :at_wall, :seq)",
        {**event.payload, "at_wall": event.at_wall, "seq": event.seq},
    )


def _add_shipment(db: sqlite3.Connection, event: Event) -> None:
    db.execute(
        "INSERT INTO shipments (order_no, parcel_no, parcel_count, tracking_no, carrier,"
        " service, operator, shipped_at, event_seq) VALUES (:order_no, :parcel_no,"
        " :parcel_count, :tracking_no, :carrier, :service, :operator, :at_wall, :seq)",
        {**event.payload, "at_wall": event.at_wall, "seq": event.seq},
    )
