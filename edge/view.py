"""The bench as the packer's screen shows it: one JSON-ready read model, and its changes.

:class:`BenchView` is everything the kiosk page renders — state, operator, the order
in progress line by line, what to scan next, the last feedback, parcels, devices,
sync, deadlines and the "next to pack" list — already in the packer's words, so the
page only lays it out. :func:`build_view` makes one from the bench's state and what
the agent knows; :class:`ViewChanges` tells a listener (the kiosk's SSE stream) that a
new view is there, by callback or by waiting on a counter.

No customer data is in the view: the recipient's name, phone and address are not
needed at the bench screen (C1).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from edge.bench.guide import next_step
from edge.bench.inputs import BenchRules
from edge.bench.state import BenchState, Outcome, ParcelProgress
from sync.order import Order

__all__ = [
    "CLOCK_SKEW_SHOWN",
    "RESTARTED_NOTICE",
    "AlarmView",
    "BenchView",
    "DevicesView",
    "FeedbackView",
    "LineView",
    "LinkState",
    "NextOrder",
    "OrderView",
    "ParcelView",
    "ReturnView",
    "SyncView",
    "ViewChanges",
    "ViewState",
    "build_view",
]

log = logging.getLogger(__name__)

ViewState = Literal["idle", "packing", "alarm", "done"]
"""The big signal: nothing going on, an order in progress, a blocking alarm, finished."""

RESTARTED_NOTICE = "Restarted — check that your last item was counted"
"""Shown beside the order's progress after a restart mid-order, until the next scan."""


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class LineView(_View):
    """One order line: what to scan and how many are verified."""

    sku: str
    name: str
    code: str
    qty: int
    verified: int
    open: int


class ParcelView(_View):
    """One parcel of the order, with its waybill's state in words."""

    parcel_no: int
    items: int
    tracking_no: str
    state: str
    error: str = ""


class OrderView(_View):
    """The order in progress."""

    order_no: str
    carrier: str
    service: str
    revision: int
    lines: list[LineView]
    parcels: list[ParcelView]
    parcel_no: int
    parcel_count: int
    items_total: int
    items_verified: int
    qc: Literal["not chosen", "needed", "passed"]
    qc_checker: str | None = None
    pack_by: datetime | None = None
    ship_by: datetime | None = None
    blocked: str = ""


class FeedbackView(_View):
    """The last thing the packer was told: outcome (for colour and sound), words, code."""

    outcome: Outcome
    message: str
    code: str = ""
    text: str = ""
    at: float = 0.0


class AlarmView(_View):
    """The blocking alarm: only ``CMD-OK`` clears it."""

    code: str
    message: str


class ReturnView(_View):
    """A returned parcel being inspected."""

    order_no: str | None
    tracking_no: str
    items: dict[str, int]


class DevicesView(_View):
    """Printer and scanner as last read."""

    printer: str
    printer_detail: str
    printer_model: str
    printer_ready: bool
    printer_problem: str
    labels_left: int | None
    label_size: str
    scanner: str
    scanner_detail: str
    printing: str = ""


LinkState = Literal[
    "starting", "connected", "central_silent", "unreachable", "name_conflict", "stopping"
]
"""The bench's link to central as the screen shows it: the uplink's
:data:`~edge.uplink.LinkKind`, or ``name_conflict`` while central reports another bench
using this station's name (it outranks the rest: nothing of this bench is stored)."""

CLOCK_SKEW_SHOWN = 60.0
"""A clock further off than this from central's (seconds) is shown on the screen; the
same as central's default ``skew_tolerance``, beyond which it flags the times."""


class SyncView(_View):
    """What central has not received yet, and the link to central in words.

    ``link`` is the link in one word (:data:`LinkState`), ``broker`` the uplink's words
    for it (why it is down, with the broker's address, never a password).
    ``clock_skew_s`` (this bench's clock minus central's, None until known) and
    ``name_conflict`` (central's words while another bench uses this station's name)
    come from the uplink when it knows them; ``clock_skew_large`` is whether the skew is
    worth the packer's attention (beyond :data:`CLOCK_SKEW_SHOWN`).
    """

    backlog: int
    oldest_unsent_at: float | None
    oldest_unsent_age_s: float | None
    broker: str
    link: LinkState = "starting"
    clock_skew_s: float | None = None
    clock_skew_large: bool = False
    name_conflict: str | None = None


class NextOrder(_View):
    """An order waiting to be packed, for the "next to pack" list."""

    order_no: str
    carrier: str
    items: int
    parcels: int
    pack_by: datetime | None = None
    ship_by: datetime | None = None


class BenchView(_View):
    """The whole packer's screen of one bench (JSON: ``view.model_dump(mode="json")``).

    ``version`` grows with every change (:class:`ViewChanges`).
    """

    station: str
    site: str
    version: int
    at: float
    state: ViewState
    operator: str | None
    next_step: str
    feedback: FeedbackView | None
    alarm: AlarmView | None
    order: OrderView | None
    returning: ReturnView | None
    notice: str | None
    devices: DevicesView
    sync: SyncView
    next_to_pack: list[NextOrder]
    last_order_no: str | None


_LABEL_WORDS = {
    "none": "packing",
    "waiting_qc": "waiting for QC",
    "printing": "printing label",
    "printed": "label printed",
    "failed": "label failed",
    "voided": "label voided",
}


def _parcel_state(parcel: ParcelProgress, current: int) -> str:
    if parcel.shipped:
        return "shipped" if parcel.label != "voided" else "shipped, label voided"
    if not parcel.closed:
        return "packing" if parcel.parcel_no == current else "to pack"
    return _LABEL_WORDS[parcel.label] if parcel.label != "none" else "closed"


def _order_view(state: BenchState) -> OrderView | None:
    o = state.order
    if o is None:
        return None
    order = o.order
    return OrderView(
        order_no=order.order_no,
        carrier=order.carrier,
        service=order.service,
        revision=order.revision,
        lines=[
            LineView(
                sku=line.sku,
                name=line.name,
                code=line.code,
                qty=line.qty,
                verified=line.verified,
                open=line.open,
            )
            for line in o.lines
        ],
        parcels=[
            ParcelView(
                parcel_no=p.parcel_no,
                items=p.items,
                tracking_no=order.parcel_tracking(p.parcel_no),
                state=_parcel_state(p, o.current),
                error=p.label_error,
            )
            for p in o.parcels
        ],
        parcel_no=o.current,
        parcel_count=len(o.parcels),
        items_total=sum(line.qty for line in o.lines),
        items_verified=sum(line.verified for line in o.lines),
        qc="passed" if o.qc_passed else ("needed" if o.qc_required else "not chosen"),
        qc_checker=o.qc_checker,
        pack_by=order.pack_by,
        ship_by=order.ship_by,
        blocked=o.blocked,
    )


def _view_state(state: BenchState) -> ViewState:
    if state.alarm is not None:
        return "alarm"
    if state.order is not None or state.returning is not None:
        return "packing"
    if state.last_feedback is not None and state.last_feedback.outcome == "done":
        return "done"
    return "idle"


def build_view(
    state: BenchState,
    *,
    rules: BenchRules,
    site: str,
    version: int,
    now: float,
    devices: DevicesView,
    sync: SyncView,
    next_orders: Sequence[Order] = (),
) -> BenchView:
    """The screen for ``state`` (pure: everything else is handed in)."""
    feedback = state.last_feedback
    r = state.returning
    return BenchView(
        station=rules.station,
        site=site,
        version=version,
        at=now,
        state=_view_state(state),
        operator=state.operator,
        next_step=next_step(state, rules),
        feedback=FeedbackView(**feedback.model_dump()) if feedback is not None else None,
        alarm=AlarmView(code=state.alarm.code, message=state.alarm.message)
        if state.alarm is not None
        else None,
        order=_order_view(state),
        returning=ReturnView(
            order_no=r.order.order_no if r.order else None,
            tracking_no=r.tracking_no,
            items=dict(r.items),
        )
        if r is not None
        else None,
        notice=RESTARTED_NOTICE if state.restarted else None,
        devices=devices,
        sync=sync,
        next_to_pack=[
            NextOrder(
                order_no=o.order_no,
                carrier=o.carrier,
                items=o.item_count,
                parcels=o.parcel_count,
                pack_by=o.pack_by,
                ship_by=o.ship_by,
            )
            for o in next_orders
        ],
        last_order_no=state.last_order_no,
    )


Listener = Callable[[int], None]


class ViewChanges:
    """A change counter for the bench's view: bump it, wait on it, or subscribe.

    Thread-safe. :meth:`wait` blocks until the version passes ``after`` (or the
    timeout), which is all an SSE loop needs; :meth:`subscribe` calls a function with
    the new version on the thread that made the change (keep it quick, e.g. put it on
    an asyncio loop with ``call_soon_threadsafe``).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._listeners: list[Listener] = []

    @property
    def version(self) -> int:
        """The current version (0 before the first change)."""
        with self._cond:
            return self._version

    def bump(self) -> int:
        """Something on the screen changed; returns the new version."""
        with self._cond:
            self._version += 1
            version = self._version
            listeners = list(self._listeners)
            self._cond.notify_all()
        for listener in listeners:
            try:
                listener(version)
            except Exception:  # one bad listener must not stop the bench
                log.exception("view listener failed")
        return version

    def wait(self, *, after: int, timeout: float | None = None) -> int:
        """The version once it is greater than ``after``, or the current one at timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._version > after, timeout=timeout)
            return self._version

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(version)`` after every change; returns the unsubscribe."""
        with self._cond:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._cond:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe
