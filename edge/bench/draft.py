"""The draft of one workflow step, and what every part of the workflow shares.

A :class:`Draft` holds a copy of the bench's state and collects what the step decides
— events, print requests, the packer's feedback — until it becomes a
:class:`~edge.bench.inputs.Decision`. The parts of the workflow build on it
(:mod:`edge.bench.printing`, :mod:`edge.bench.returns`, :mod:`edge.bench.machine`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from edge.bench.codes import shown
from edge.bench.guide import next_step
from edge.bench.inputs import BenchRules, Decision, World
from edge.bench.state import (
    Alarm,
    BenchState,
    Feedback,
    LineProgress,
    OrderInProgress,
    Outcome,
    ParcelProgress,
    PrintKind,
    PrintRequest,
)
from sync.events import EventPayload, LabelVoided, ParcelItem, ScanRejected, ShipmentShipped
from sync.order import Order, ReturnInfo

__all__ = ["Draft", "clock_words", "item_words", "plural"]


def clock_words(at: float) -> str:
    """A wall time as the packer reads it: local ``HH:MM``."""
    return datetime.fromtimestamp(at, UTC).astimezone().strftime("%H:%M")


def item_words(line: LineProgress) -> str:
    """A line's item in words: ``纯棉T恤 (TEE-BLK-M)``."""
    return f"{line.name} ({line.sku})" if line.name else line.sku


def plural(n: int, word: str) -> str:
    """``1 item``, ``3 items``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class Draft:
    """One step's draft: the copied state and what it decided so far."""

    def __init__(self, state: BenchState, *, rules: BenchRules, world: World, now: float) -> None:
        self.s = state.model_copy(deep=True)
        self.rules = rules
        self.world = world
        self.now = now
        self.events: list[EventPayload] = []
        self.prints: list[PrintRequest] = []
        self.feedback: Feedback | None = None
        self.text = ""

    def decision(self) -> Decision:
        """The step's outcome: the new state (with its queued prints) and what it decided."""
        if self.feedback is not None:
            self.s.last_feedback = self.feedback
        self.s.prints.extend(self.prints)
        return Decision(
            state=self.s,
            events=tuple(self.events),
            prints=tuple(self.prints),
            feedback=self.feedback,
        )

    def tell(self, outcome: Outcome, message: str, code: str = "") -> None:
        """What the packer is told about this step (the last word wins)."""
        self.feedback = Feedback(
            outcome=outcome, message=message, code=code, text=shown(self.text), at=self.now
        )

    def who(self) -> str | None:
        """The operator to name on events: the logged-in packer, else the configured one."""
        return self.s.operator or self.rules.default_operator or None

    def order_no(self) -> str | None:
        """The order the bench is busy with (packing or a return), or None."""
        if self.s.order is not None:
            return self.s.order.order_no
        if self.s.returning is not None and self.s.returning.order is not None:
            return self.s.returning.order.order_no
        return None

    def refuse(self, code: str, message: str, *, order_no: str | None = None) -> None:
        """Refuse the scan: tell the packer and record it (``scan.rejected``)."""
        self.events.append(
            ScanRejected(
                text=shown(self.text),
                reason=message,
                order_no=order_no if order_no is not None else self.order_no(),
                code=code,
                operator=self.who(),
            )
        )
        self.tell("refused", message, code)

    def alarm(self, code: str, message: str) -> None:
        """Refuse the scan and block the bench until ``CMD-OK`` (B4)."""
        self.refuse(code, message)
        self.s.alarm = Alarm(code=code, message=message, order_no=self.order_no())
        self.tell("alarm", message, code)

    def printer_ready(self) -> bool:
        """B2 before a label is due; refuses the scan when the printer cannot print."""
        check = self.world.printer
        if check.ready:
            return True
        code = check.code or "printer_not_ready"
        self.refuse(code, f"{check.message} — fix the printer, then scan again")
        return False

    @staticmethod
    def _free_job(base: str, used: Sequence[str]) -> str:
        if base not in used:
            return base
        n = 2
        while f"{base}-{n}" in used:
            n += 1
        return f"{base}-{n}"

    def print_job(
        self,
        kind: PrintKind,
        order: Order,
        *,
        used: list[str],
        parcel_no: int | None = None,
        reprint: bool = False,
        reason: str = "",
        qc: bool = False,
        returned: ReturnInfo | None = None,
        base: str | None = None,
    ) -> PrintRequest:
        """Ask for a label with a job id no earlier print of the order used."""
        if base is None:
            what = {"waybill": f"waybill-{parcel_no}", "packing_list": "packing-list"}.get(
                kind, kind
            )
            base = f"{order.order_no}-r{order.revision}-{what}"
        job_id = self._free_job(base, used)
        used.append(job_id)
        request = PrintRequest(
            job_id=job_id,
            kind=kind,
            order=order,
            parcel_no=parcel_no,
            reprint=reprint,
            reason=reason,
            qc=qc,
            returned=returned,
        )
        self.prints.append(request)
        return request

    def print_waybill(
        self, o: OrderInProgress, parcel: ParcelProgress, *, reprint: bool, reason: str = ""
    ) -> None:
        """Ask for parcel's waybill and mark the parcel as printing."""
        request = self.print_job(
            "waybill",
            o.order,
            used=o.jobs,
            parcel_no=parcel.parcel_no,
            reprint=reprint,
            reason=reason,
        )
        parcel.label = "printing"
        parcel.label_job = request.job_id
        parcel.label_revision = o.order.revision
        parcel.label_error = ""

    def can_pack(self, o: OrderInProgress) -> bool:
        """False (and the scan refused) while central's change blocks the order."""
        if o.blocked:
            self.refuse("order_changed", o.blocked)
            return False
        return True

    def stale(self, o: OrderInProgress, parcel: ParcelProgress) -> bool:
        """A printed, unshipped label from an older revision of the order."""
        return (
            parcel.label == "printed"
            and not parcel.shipped
            and parcel.label_revision < o.order.revision
        )

    def ship(self, o: OrderInProgress, parcel: ParcelProgress, *, confirm: str) -> None:
        """Confirm the parcel (B5): one ``shipment.shipped`` with its contents."""
        order = o.order
        self.events.append(
            ShipmentShipped(
                order_no=order.order_no,
                tracking_no=order.parcel_tracking(parcel.parcel_no),
                carrier=order.carrier,
                service=order.service,
                parcel_no=parcel.parcel_no,
                parcel_count=order.parcel_count,
                operator=self.who() or self.rules.station,
                print_job_id=parcel.label_job,
                print_verified=parcel.label_verified,
                confirm=confirm,
                contents=[ParcelItem(sku=k, qty=v) for k, v in sorted(parcel.contents.items())],
            )
        )
        parcel.shipped = True

    def after_ship(self, o: OrderInProgress) -> None:
        """The order is done when every parcel shipped; else say what is next."""
        order = o.order
        if all(p.shipped for p in o.parcels):
            parcels = f" in {order.parcel_count} parcels" if order.parcel_count > 1 else ""
            self.s.order = None
            self.s.last_order_no = order.order_no
            self.tell(
                "done",
                f"{order.order_no} shipped{parcels}: {order.carrier} {order.tracking_no}",
            )
            return
        shipped = sum(p.shipped for p in o.parcels)
        self.tell(
            "ok",
            f"Parcel {shipped} of {order.parcel_count} shipped — {next_step(self.s, self.rules)}",
        )

    def record_void(self, o: OrderInProgress, parcel: ParcelProgress, *, reason: str) -> None:
        """Record that parcel's printed waybill is void."""
        self.events.append(
            LabelVoided(
                order_no=o.order_no,
                job_id=parcel.label_job,
                parcel_no=parcel.parcel_no,
                tracking_no=o.order.parcel_tracking(parcel.parcel_no),
                reason=reason,
                operator=self.who(),
            )
        )
        parcel.label = "voided"

    def void_unshipped(self, o: OrderInProgress, *, reason: str) -> int:
        """Void every printed waybill of ``o`` whose parcel has not shipped."""
        count = 0
        for parcel in o.parcels:
            if parcel.label == "printed" and not parcel.shipped:
                self.record_void(o, parcel, reason=reason)
                count += 1
        return count
