"""Returns at the bench (B8): ``CMD-RETURN``, the parcel, what came back, the outcome."""

from __future__ import annotations

from edge.bench.codes import ScannedCode, shown
from edge.bench.printing import Printing
from edge.bench.state import ReturnInProgress
from sync.events import ParcelItem, ReturnInspected
from sync.order import ReturnInfo, ReturnOutcome

__all__ = ["Returns"]


class Returns(Printing):
    """The return inspection branch of the workflow."""

    def start_return(self) -> None:
        """``CMD-RETURN``: the next scan is the returned parcel."""
        if self.s.order is not None:
            self.refuse(
                "order_in_progress",
                f"Finish {self.s.order.order_no} first (or CMD-CANCEL it), then CMD-RETURN",
            )
            return
        self.s.returning = ReturnInProgress()
        self.tell("ok", "Return: scan the returned parcel's tracking or order number")

    def return_outcome(self, outcome: ReturnOutcome) -> None:
        """``CMD-RESTOCK``/``DAMAGED``/``WRONG-ITEM``: record it, print the return label."""
        r = self.s.returning
        if r is None or r.order is None:
            self.refuse("no_return", "Scan CMD-RETURN and the returned parcel first")
            return
        if not r.items:
            self.refuse("no_items", "Scan what came back first")
            return
        if not self.printer_ready():
            return
        order = r.order
        items = [ParcelItem(sku=sku, qty=qty) for sku, qty in sorted(r.items.items())]
        self.events.append(
            ReturnInspected(
                order_no=order.order_no,
                tracking_no=r.tracking_no,
                outcome=outcome.value,
                items=items,
                operator=self.who(),
            )
        )
        info = ReturnInfo(outcome=outcome)
        used = list(self.world.last.printed_jobs) if self.world.last is not None else []
        self.s.return_seq += 1
        self.print_job(
            "return",
            order.model_copy(update={"return_info": info}),
            used=used,
            returned=info,
            base=f"{order.order_no}-return-{self.s.return_seq}",
        )
        self.s.returning = None
        self.s.last_order_no = order.order_no
        words = {"restock": "restock", "damaged": "damaged", "wrong_item": "wrong item"}
        self.tell(
            "done",
            f"Return of {order.order_no} recorded: {words[outcome.value]} — the return label "
            "is printing",
        )

    def return_scan(self, code: ScannedCode) -> None:
        """During a return: the parcel first, then each item that came back."""
        r = self.s.returning
        assert r is not None
        if r.order is None:
            facts = self.world.order
            if facts is None:
                self.refuse(
                    "unknown_code",
                    f"{shown(code.text)} is not an order this bench knows — check the parcel's "
                    "label",
                )
                return
            r.order = facts.order
            parcel = facts.order.parcel_with_tracking(code.text)
            r.tracking_no = facts.order.parcel_tracking(parcel) if parcel else ""
            self.tell("ok", f"Return of {facts.order.order_no}: scan each item that came back")
            return
        order = r.order
        line = next((ln for ln in order.lines if code.matches(ln.scan_code)), None)
        if line is None:
            line = next((ln for ln in order.lines if code.text == ln.sku), None)
        sku = line.sku if line is not None else code.text
        r.items[sku] = r.items.get(sku, 0) + 1
        r.scanned.append(sku)
        note = "" if line is not None else f" (not in {order.order_no})"
        self.tell(
            "ok",
            f"Returned: {sku}{note} — {sum(r.items.values())} item(s); then CMD-RESTOCK, "
            "CMD-DAMAGED or CMD-WRONG-ITEM",
        )
