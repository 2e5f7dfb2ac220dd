"""Labels in the workflow: print results, reprint and void (B3, B6).

A print request is decided and recorded before the agent prints it; its result comes
back as :class:`~edge.bench.inputs.PrintDone` or
:class:`~edge.bench.inputs.PrintFailed`. A failed label waits and prints when the
printer reports ready again or at ``CMD-REPRINT``; ``CMD-VOID`` then a waybill voids it.
"""

from __future__ import annotations

from edge.bench.codes import ScannedCode, shown
from edge.bench.draft import Draft, plural
from edge.bench.inputs import PrintDone, PrintFailed
from edge.bench.state import LastLabel, OrderInProgress, Pending, PrintRequest
from sync.events import LabelPrinted, LabelVoided
from sync.order import Order

__all__ = ["Printing"]


class Printing(Draft):
    """Print results, ``CMD-REPRINT`` and ``CMD-VOID``."""

    def reprint(self) -> None:
        """``CMD-REPRINT``: failed labels again, a voided parcel's new one, else the last."""
        if self.s.failed_prints:
            if not self.printer_ready():
                return
            again, self.s.failed_prints = self.s.failed_prints, []
            for request in again:
                self.prints.append(request.model_copy(update={"error": ""}))
                self.mark_printing(request)
            self.tell("ok", f"Printing {plural(len(again), 'label')} again")
            return
        o = self.s.order
        if o is not None and not self.can_pack(o):
            return
        if o is not None:
            voided = [p for p in o.parcels if p.label == "voided" and p.closed]
            if voided:
                if not self.printer_ready():
                    return
                for parcel in voided:
                    self.print_waybill(o, parcel, reprint=True, reason="replaces a voided label")
                self.tell("ok", f"Printing the new label for parcel {voided[0].parcel_no}")
                return
        last = self.s.last_label
        if last is None:
            self.refuse("nothing_to_reprint", "No label printed yet to reprint")
            return
        order, used = self.order_for_label(last)
        if order is None:
            self.refuse("nothing_to_reprint", f"{last.order_no} is no longer held at this bench")
            return
        if not self.printer_ready():
            return
        base = last.job_id if last.kind == "return" else None
        if last.returned is not None:
            order = order.model_copy(update={"return_info": last.returned})
        request = self.print_job(
            last.kind,
            order,
            used=used,
            parcel_no=last.parcel_no,
            reprint=True,
            reason="reprint requested at the bench",
            returned=last.returned,
            base=base,
        )
        if o is not None and last.kind == "waybill" and o.order_no == last.order_no:
            assert last.parcel_no is not None
            parcel = o.parcel(last.parcel_no)
            if not parcel.shipped:
                parcel.label = "printing"
                parcel.label_job = request.job_id
                parcel.label_revision = o.order.revision
        what = {"waybill": "waybill", "packing_list": "packing list", "return": "return label"}
        self.tell("ok", f"Reprinting the {what.get(last.kind, 'label')} of {last.order_no}")

    def order_for_label(self, last: LastLabel) -> tuple[Order | None, list[str]]:
        """The order (and its used job ids) a remembered label belongs to."""
        o = self.s.order
        if o is not None and o.order_no == last.order_no:
            return o.order, o.jobs
        facts = self.world.last
        if facts is not None and facts.order.order_no == last.order_no:
            return facts.order, list(facts.printed_jobs)
        return None, []

    def mark_printing(self, request: PrintRequest) -> None:
        """A retried waybill shows as printing again on its parcel."""
        o = self.s.order
        if request.kind == "waybill" and o is not None and o.order_no == request.order.order_no:
            assert request.parcel_no is not None
            parcel = o.parcel(request.parcel_no)
            if parcel.label_job == request.job_id:
                parcel.label = "printing"
                parcel.label_error = ""

    def start_void(self) -> None:
        """``CMD-VOID``: the next scan is the waybill to void."""
        o = self.s.order
        has_label = (o is not None and any(p.label == "printed" for p in o.parcels)) or (
            self.s.last_label is not None and self.s.last_label.kind == "waybill"
        )
        if not has_label:
            self.refuse("nothing_to_void", "No printed waybill to void")
            return
        self.s.pending = Pending(kind="void")
        self.tell("ok", "Scan the barcode of the label to void")

    def void_label(self, code: ScannedCode) -> None:
        """The waybill scanned after ``CMD-VOID``: void it, or refuse."""
        self.s.pending = None
        o = self.s.order
        if o is not None:
            for parcel in o.parcels:
                tracking = o.order.parcel_tracking(parcel.parcel_no)
                # A parcel shipped before the order was taken up again has no print job
                # here to void (its label is judged below, or refused).
                if parcel.label == "printed" and parcel.label_job and code.matches(tracking):
                    self.record_void(o, parcel, reason="voided at the bench")
                    self.tell(
                        "ok",
                        f"Label of parcel {parcel.parcel_no} voided — tear it up and scan "
                        "CMD-REPRINT for a new one",
                    )
                    return
        facts, last = self.world.last, self.s.last_label
        if facts is not None and last is not None and last.kind == "waybill":
            order = facts.order
            parcel_no = last.parcel_no or 1
            if last.order_no == order.order_no and code.matches(order.parcel_tracking(parcel_no)):
                self.events.append(
                    LabelVoided(
                        order_no=order.order_no,
                        job_id=last.job_id,
                        parcel_no=parcel_no,
                        tracking_no=order.parcel_tracking(parcel_no),
                        reason="voided at the bench",
                        operator=self.who(),
                    )
                )
                self.tell(
                    "ok",
                    f"Label of {order.order_no} parcel {parcel_no} voided — scan CMD-REPRINT "
                    "for a new one",
                )
                return
        self.refuse("not_a_label", f"{shown(code.text)} is not a printed waybill of this bench")

    def take_print(self, job_id: str) -> PrintRequest | None:
        """The queued request of ``job_id``, taken off the queue."""
        for i, request in enumerate(self.s.prints):
            if request.job_id == job_id:
                return self.s.prints.pop(i)
        return None

    def printed(self, done: PrintDone) -> None:
        """A label came out: record it; a waybill confirms its parcel (``confirm = auto``)."""
        request = self.take_print(done.job_id)
        if request is None:
            return  # not ours (or already handled): nothing to record
        self.events.append(
            LabelPrinted(
                order_no=request.order.order_no,
                job_id=request.job_id,
                kind=request.kind,
                verified=done.verified,
                duplicate=done.duplicate,
                parcel_no=request.parcel_no,
                reprint=request.reprint,
                reason=request.reason,
                operator=self.who(),
            )
        )
        self.s.last_label = LastLabel(
            job_id=request.job_id,
            kind=request.kind,
            order_no=request.order.order_no,
            parcel_no=request.parcel_no,
            returned=request.returned,
        )
        o = self.s.order
        if request.kind != "waybill" or o is None or o.order_no != request.order.order_no:
            return
        assert request.parcel_no is not None
        parcel = o.parcel(request.parcel_no)
        if parcel.label_job != request.job_id:
            return
        parcel.label = "printed"
        parcel.label_verified = done.verified
        if parcel.shipped:
            self.tell("ok", f"New label for parcel {parcel.parcel_no} printed")
            return
        if o.blocked or o.qc_pending or self.stale(o, parcel):
            return
        if self.rules.confirm == "auto":
            self.ship(o, parcel, confirm="auto")
            self.after_ship(o)
        else:
            self.tell(
                "ok",
                f"Label printed: stick it on parcel {parcel.parcel_no} and scan it to confirm",
            )

    def print_failed(self, failed: PrintFailed) -> None:
        """A label did not print: it waits for the printer or ``CMD-REPRINT``."""
        request = self.take_print(failed.job_id)
        if request is None:
            return
        self.s.failed_prints.append(request.model_copy(update={"error": failed.message}))
        o = self.s.order
        if request.kind == "waybill" and o is not None and o.order_no == request.order.order_no:
            assert request.parcel_no is not None
            parcel = o.parcel(request.parcel_no)
            if parcel.label_job == request.job_id:
                parcel.label = "failed"
                parcel.label_error = failed.message
        what = {"waybill": "label", "packing_list": "packing list", "return": "return label"}
        self.tell(
            "refused",
            f"The {what.get(request.kind, 'label')} did not print: {failed.message} — it prints "
            "when the printer is ready (or scan CMD-REPRINT)",
            failed.code,
        )

    def printer_back(self) -> None:
        """The printer is ready again: labels that failed print now."""
        if not self.s.failed_prints:
            return
        again, self.s.failed_prints = self.s.failed_prints, []
        for request in again:
            self.prints.append(request.model_copy(update={"error": ""}))
            self.mark_printing(request)
        self.tell("info", f"Printer ready — printing {plural(len(again), 'label')}")

    def refresh_failed(self, o: OrderInProgress) -> None:
        """Waybills that failed to print are printed from the order's newest revision."""
        kept: list[PrintRequest] = []
        for request in self.s.failed_prints:
            if request.order.order_no != o.order_no or request.kind != "waybill":
                kept.append(request)
                continue
            assert request.parcel_no is not None
            base = f"{o.order_no}-r{o.order.revision}-waybill-{request.parcel_no}"
            job_id = self._free_job(base, o.jobs)
            o.jobs.append(job_id)
            kept.append(request.model_copy(update={"order": o.order, "job_id": job_id}))
            parcel = o.parcel(request.parcel_no)
            parcel.label_job = job_id
            parcel.label_revision = o.order.revision
        self.s.failed_prints = kept
