"""An in-memory bench around the pure state machine: what the agent does, minus I/O.

:class:`SimBench` holds orders, shipped parcels and print jobs in dicts, looks up the
:class:`~edge.bench.inputs.World` for each input as the agent does, and plays the
printer: every print request is answered (printed, or failed while ``printer_down``).
Tests of the workflow drive it with scans and read events, labels and state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from edge.bench import (
    BenchRules,
    BenchState,
    Decision,
    Feedback,
    Input,
    OrderChanged,
    OrderFacts,
    PrintDone,
    PrinterCheck,
    PrinterReady,
    PrintFailed,
    PrintRequest,
    Resume,
    Scan,
    ShippedParcel,
    World,
    normalise,
    step,
)
from sync.events import EventPayload
from sync.order import Order, validate_order


def order(order_no: str, **fields: Any) -> Order:
    """A packable order: two lines (EAN-13 barcodes), one parcel, unless told otherwise."""
    data: dict[str, Any] = {
        "order_no": order_no,
        "carrier": "SF Express",
        "tracking_no": f"SF{order_no}",
        "recipient": {"name": "张三", "phone": "13812345678", "address": "科技园 1 号"},
        "lines": [
            {"sku": "TEE", "name": "T恤", "qty": 2, "barcode": "6901234567892"},
            {"sku": "CAP", "name": "帽子", "qty": 1, "barcode": "6901234567908"},
        ],
    }
    data.update(fields)
    return validate_order(data)


TEE, CAP = "6901234567892", "6901234567908"


@dataclasses.dataclass
class Printed:
    """A label the simulated printer produced."""

    job_id: str
    kind: str
    order_no: str
    parcel_no: int | None
    reprint: bool
    revision: int


class SimBench:
    """The bench with an in-memory store and a printer that answers at once."""

    def __init__(self, *, orders: Iterable[Order] = (), now: float = 1.8e9, **rules: Any) -> None:
        self.rules = BenchRules(station="sim", **rules)
        self.state = BenchState()
        self.orders: dict[str, Order] = {o.order_no: o for o in orders}
        self.events: list[EventPayload] = []
        self.labels: list[Printed] = []
        self.printer_down = ""
        self.printer_known_down = ""
        self.printer_verifies = True
        self.now = now
        self.feedback: Feedback | None = None

    # -- the world -------------------------------------------------------------------

    def facts(self, order: Order) -> OrderFacts:
        shipped: dict[int, ShippedParcel] = {}
        for e in self.events:
            if e.TYPE == "shipment.shipped" and e.order_no == order.order_no:  # type: ignore[attr-defined]
                contents = {i.sku: i.qty for i in e.contents}  # type: ignore[attr-defined]
                shipped[e.parcel_no] = ShippedParcel(  # type: ignore[attr-defined]
                    parcel_no=e.parcel_no,  # type: ignore[attr-defined]
                    tracking_no=e.tracking_no,  # type: ignore[attr-defined]
                    shipped_at=self.now,
                    contents=contents,
                )
        jobs = tuple(
            e.job_id  # type: ignore[attr-defined]
            for e in self.events
            if e.TYPE == "label.printed" and e.order_no == order.order_no  # type: ignore[attr-defined]
        )
        return OrderFacts(order=order, shipped=tuple(shipped.values()), printed_jobs=jobs)

    def find(self, text: str) -> Order | None:
        code = normalise(text)
        for o in self.orders.values():
            if code.matches(o.order_no):
                return o
        for o in self.orders.values():
            if any(code.matches(o.parcel_tracking(n)) for n in range(1, o.parcel_count + 1)):
                return o
        return None

    def world(self, text: str = "") -> World:
        found = self.find(text) if text else None
        last = self.orders.get(self.state.last_order_no or "")
        product = None
        code = normalise(text) if text else None
        if code is not None and found is None:
            for o in self.orders.values():
                for line in o.lines:
                    if code.matches(line.scan_code):
                        product = line.name or line.sku
        check = PrinterCheck()
        if self.printer_known_down:
            check = PrinterCheck(
                ready=False, code="printer_not_ready", message=self.printer_known_down
            )
        return World(
            order=self.facts(found) if found else None,
            last=self.facts(last) if last else None,
            product=product,
            printer=check,
        )

    # -- driving -----------------------------------------------------------------------

    def apply(self, event: Input, world: World | None = None) -> Decision:
        decision = step(
            self.state, event, rules=self.rules, world=world or self.world(), now=self.now
        )
        self.state = decision.state
        self.events.extend(decision.events)
        if decision.feedback is not None:
            self.feedback = decision.feedback
        for request in decision.prints:
            self.print(request)
        return decision

    def print(self, request: PrintRequest) -> None:
        if self.printer_down:
            self.apply(
                PrintFailed(
                    job_id=request.job_id, code="printer_not_ready", message=self.printer_down
                )
            )
            return
        done = any(p.job_id == request.job_id for p in self.labels)
        if not done:
            self.labels.append(
                Printed(
                    job_id=request.job_id,
                    kind=request.kind,
                    order_no=request.order.order_no,
                    parcel_no=request.parcel_no,
                    reprint=request.reprint,
                    revision=request.order.revision,
                )
            )
        self.apply(PrintDone(job_id=request.job_id, verified=self.printer_verifies, duplicate=done))

    def scan(self, *texts: str) -> Feedback:
        for text in texts:
            self.apply(Scan(text=text), self.world(text))
        assert self.feedback is not None
        return self.feedback

    def change(self, order: Order) -> Decision:
        self.orders[order.order_no] = order
        return self.apply(OrderChanged(order=order))

    def printer_back(self) -> Decision:
        self.printer_down = ""
        self.printer_known_down = ""
        return self.apply(PrinterReady())

    def resume(self) -> Decision:
        """A restart: the state comes back from JSON; queued prints are printed again."""
        self.state = BenchState.model_validate_json(self.state.model_dump_json())
        decision = self.apply(Resume())
        for request in list(self.state.prints):
            self.print(request)
        return decision

    # -- reading -----------------------------------------------------------------------

    def of(self, type_name: str) -> list[Any]:
        return [e for e in self.events if type_name == e.TYPE]

    def waybills(self) -> list[Printed]:
        return [p for p in self.labels if p.kind == "waybill"]
