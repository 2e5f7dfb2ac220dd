"""The bench workflow (B1–B8) as a pure state machine: state + input → decision.

:func:`step` takes the bench's :class:`~edge.bench.state.BenchState`, one input (a
scan, a print job's result, an order changed by central, a restart) and what the
agent looked up for it (:class:`World`), and returns a :class:`Decision`: the new
state, the events to record, the labels to print and what to tell the packer. It does
no I/O and reads no clock (``now`` is given), so every path is a plain function call
in the tests. The agent records the events and the new state in one transaction,
then prints, then feeds each print's result back in.

The rules, in order of precedence for a scan:

1. a blocking alarm accepts only ``CMD-OK`` (every other scan repeats it);
2. command barcodes (``CMD-...``) and badges (``badge_prefix``) are understood
   everywhere else;
3. with ``require_operator`` nothing else is accepted until a badge was scanned;
4. a command waiting for its next scan (``CMD-QTY-n``, ``CMD-FORCE``, ``CMD-VOID``)
   takes it;
5. while a return is inspected, scans are the returned parcel and its items;
6. while an order is in progress, scans are its items (B4), or its waybill for
   ``confirm = "scan"``;
7. otherwise a scan is an order or tracking number: audit (B1), start.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

from edge.bench.codes import ScannedCode, normalise, shown
from edge.bench.commands import BadCommand, Cmd, Command, parse_command
from edge.bench.state import (
    Alarm,
    BenchState,
    Feedback,
    LastLabel,
    LineProgress,
    OrderInProgress,
    Outcome,
    ParcelProgress,
    Pending,
    PrintKind,
    PrintRequest,
    ReturnInProgress,
    VerifyStep,
)
from sync.events import (
    AlarmAcknowledged,
    EventPayload,
    ItemUndone,
    ItemVerified,
    LabelPrinted,
    LabelVoided,
    OperatorLogin,
    OperatorLogout,
    OrderPacked,
    OrderStarted,
    PackingAbandoned,
    ParcelItem,
    ProblemReported,
    QcChecked,
    ReturnInspected,
    ScanRejected,
    ShipmentShipped,
)
from sync.order import Order, ReturnInfo, ReturnOutcome, packing_blockers
from sync.qc import qc_selected

__all__ = [
    "BenchRules",
    "Decision",
    "Input",
    "OrderChanged",
    "OrderFacts",
    "PrintDone",
    "PrintFailed",
    "PrinterCheck",
    "PrinterReady",
    "Resume",
    "Scan",
    "ShippedParcel",
    "Unreadable",
    "World",
    "next_step",
    "step",
]

# --------------------------------------------------------------------------- inputs


@dataclasses.dataclass(frozen=True, kw_only=True)
class Scan:
    """A scanned (or typed) code."""

    text: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Unreadable:
    """A scan the scanner could not decode (dropped, never guessed; docs/scanners.md)."""

    raw: str
    reason: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrintDone:
    """A print job came out (or was already printed: ``duplicate``)."""

    job_id: str
    verified: bool
    duplicate: bool = False
    detail: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrintFailed:
    """A print job failed; ``code`` is ``printer_not_ready`` or ``label_does_not_fit``."""

    job_id: str
    code: str
    message: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class OrderChanged:
    """Central sent a newer revision of an order (address change, hold, ...)."""

    order: Order


@dataclasses.dataclass(frozen=True, kw_only=True)
class Resume:
    """The agent started again with this state (after a stop, a crash, a power cut)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrinterReady:
    """The printer reports ready again: labels that failed may print now."""


Input = Scan | Unreadable | PrintDone | PrintFailed | OrderChanged | Resume | PrinterReady

# --------------------------------------------------------------------------- context


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchRules:
    """The station settings the workflow follows (docs/station.md)."""

    station: str
    badge_prefix: str = "OP-"
    require_operator: bool = True
    supervisor_badges: frozenset[str] = frozenset()
    print_packing_list: bool = True
    confirm: Literal["auto", "scan"] = "auto"
    qc_rate: float = 0.0
    site_seed: str = ""
    default_operator: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShippedParcel:
    """A parcel of an order already shipped from this station."""

    parcel_no: int
    tracking_no: str
    shipped_at: float
    contents: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class OrderFacts:
    """What the station holds about one order: the order, its shipped parcels, its
    print jobs (so a new label never reuses a job id the printer already printed)."""

    order: Order
    shipped: tuple[ShippedParcel, ...] = ()
    printed_jobs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrinterCheck:
    """The printer as last read (B2): ready, or why not in the packer's words."""

    ready: bool = True
    code: str = ""
    message: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class World:
    """What the agent looked up for one input; the machine reads nothing else.

    ``order``: the order the scanned code names (by order or tracking number);
    ``last``: the last order finished here (for a reprint or void after it shipped);
    ``product``: the name of the product the code is, when some order has it.
    """

    order: OrderFacts | None = None
    last: OrderFacts | None = None
    product: str | None = None
    printer: PrinterCheck = PrinterCheck()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Decision:
    """The outcome of one step: record ``events`` with ``state`` in one transaction,
    then print ``prints`` in order, then tell the packer ``feedback``."""

    state: BenchState
    events: tuple[EventPayload, ...] = ()
    prints: tuple[PrintRequest, ...] = ()
    feedback: Feedback | None = None


# --------------------------------------------------------------------------- words


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).astimezone().strftime("%H:%M")


def _item_words(line: LineProgress) -> str:
    return f"{line.name} ({line.sku})" if line.name else line.sku


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- the step


class _Step:
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

    # -- outputs ---------------------------------------------------------------------

    def decision(self) -> Decision:
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
        self.feedback = Feedback(
            outcome=outcome, message=message, code=code, text=shown(self.text), at=self.now
        )

    def who(self) -> str | None:
        return self.s.operator or self.rules.default_operator or None

    def order_no(self) -> str | None:
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

    # -- print jobs ------------------------------------------------------------------

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

    # -- scans -----------------------------------------------------------------------

    def scan(self, raw: str) -> None:
        self.text = raw.strip()
        if not self.text:
            self.tell("refused", "empty scan ignored", "unreadable")
            return
        self.s.restarted = False
        code = normalise(raw)
        parsed = parse_command(code.text)
        if self.s.alarm is not None:
            if isinstance(parsed, Command) and parsed.cmd is Cmd.OK:
                self.acknowledge()
            else:
                alarm = self.s.alarm
                self.refuse("alarm_pending", alarm.message)
                self.tell("alarm", alarm.message, alarm.code)
            return
        if isinstance(parsed, BadCommand):
            self.refuse("bad_command", f"{parsed.reason} — see the command sheet")
            return
        prefix = self.rules.badge_prefix
        if parsed is None and prefix and code.text.upper().startswith(prefix.upper()):
            self.badge(code.text[len(prefix) :].strip())
            return
        if self.rules.require_operator and not self.s.operator:
            self.refuse("no_operator", f"Scan your badge first ({prefix}…) — nothing was counted")
            return
        if isinstance(parsed, Command):
            self.command(parsed)
            return
        if self.s.pending is not None and self.s.pending.kind in ("void", "force"):
            if self.s.pending.kind == "void":
                self.void_label(code)
            else:
                self.force_line(code)
            return
        if self.s.returning is not None:
            self.return_scan(code)
            return
        if self.s.order is not None:
            self.order_scan(self.s.order, code)
            return
        self.start_order(code)

    def acknowledge(self) -> None:
        alarm = self.s.alarm
        assert alarm is not None
        self.events.append(
            AlarmAcknowledged(order_no=alarm.order_no, code=alarm.code, operator=self.who())
        )
        self.s.alarm = None
        self.tell("ok", f"Alarm cleared — {next_step(self.s, self.rules)}")

    # -- badges ----------------------------------------------------------------------

    def is_supervisor(self, badge: str) -> bool:
        prefix = self.rules.badge_prefix.upper()
        names = {b.upper().removeprefix(prefix) for b in self.rules.supervisor_badges if b}
        return badge.upper() in names

    def badge(self, badge: str) -> None:
        if not badge:
            self.refuse("bad_badge", "This badge has no number — scan a packer's badge")
            return
        pending, o = self.s.pending, self.s.order
        if pending is not None and pending.kind == "force" and pending.supervisor is None:
            if not self.is_supervisor(badge):
                self.refuse(
                    "not_supervisor",
                    f"Badge {badge} is not a supervisor's — force verify needs a supervisor",
                )
                return
            pending.supervisor = badge
            assert o is not None
            open_lines = [i for i, line in enumerate(o.lines) if line.open]
            if len(open_lines) == 1:
                self.force(o, open_lines[0], badge)
            else:
                self.tell("ok", f"Supervisor {badge}: scan the line's code on the packing list")
            return
        if o is not None and o.verified_all and o.qc_pending:
            if badge == self.s.operator:
                self.refuse(
                    "qc_same_person",
                    f"QC needs a second person — {badge} packed this order",
                )
                return
            o.qc_checker = badge
            self.tell("ok", f"QC by {badge}: check the order, then scan CMD-QC-PASS or CMD-QC-FAIL")
            return
        if badge == self.s.operator:
            self.tell("info", f"{badge} is logged in — {next_step(self.s, self.rules)}")
            return
        if self.s.operator:
            self.events.append(OperatorLogout(operator=self.s.operator))
        self.events.append(OperatorLogin(operator=badge))
        self.s.operator = badge
        self.s.pending = None
        self.tell("ok", f"Hello {badge} — {next_step(self.s, self.rules)}")

    # -- commands --------------------------------------------------------------------

    def command(self, command: Command) -> None:
        handlers: dict[Cmd, Callable[[], None]] = {
            Cmd.OK: lambda: self.tell("info", "No alarm to acknowledge"),
            Cmd.UNDO: self.undo,
            Cmd.CANCEL: self.cancel,
            Cmd.LOGOUT: self.logout,
            Cmd.NEXT_PARCEL: self.next_parcel,
            Cmd.REPRINT: self.reprint,
            Cmd.VOID: self.start_void,
            Cmd.FORCE: self.start_force,
            Cmd.QTY: lambda: self.quantity(command.qty),
            Cmd.QC_PASS: lambda: self.qc("pass"),
            Cmd.QC_FAIL: lambda: self.qc("fail"),
            Cmd.RETURN: self.start_return,
            Cmd.RESTOCK: lambda: self.return_outcome(ReturnOutcome.RESTOCK),
            Cmd.DAMAGED: lambda: self.return_outcome(ReturnOutcome.DAMAGED),
            Cmd.WRONG_ITEM: lambda: self.return_outcome(ReturnOutcome.WRONG_ITEM),
            Cmd.EXCEPTION_DAMAGED: lambda: self.report("damaged"),
            Cmd.EXCEPTION_STOCKOUT: lambda: self.report("stock_out"),
        }
        handlers[command.cmd]()

    def need_order(self, what: str) -> OrderInProgress | None:
        if self.s.order is None:
            self.refuse("no_order", f"No order in progress — {what} needs one")
            return None
        return self.s.order

    def undo(self) -> None:
        if self.s.pending is not None:
            kind = {"qty": "quantity", "force": "force verify", "void": "void"}[self.s.pending.kind]
            self.s.pending = None
            self.tell("ok", f"Stopped the {kind} — {next_step(self.s, self.rules)}")
            return
        if self.s.returning is not None:
            r = self.s.returning
            if not r.scanned:
                self.refuse("nothing_to_undo", "No returned item to take back")
                return
            sku = r.scanned.pop()
            r.items[sku] -= 1
            if not r.items[sku]:
                del r.items[sku]
            self.tell("ok", f"Took back {sku} from the return")
            return
        o = self.need_order("CMD-UNDO")
        if o is None:
            return
        if not o.history or o.parcel(o.history[-1].parcel_no).closed:
            self.refuse("nothing_to_undo", "Nothing to undo in the open parcel")
            return
        last = o.history.pop()
        line = o.lines[last.line]
        line.verified -= last.qty
        parcel = o.parcel(last.parcel_no)
        parcel.contents[line.sku] -= last.qty
        if not parcel.contents[line.sku]:
            del parcel.contents[line.sku]
        self.events.append(
            ItemUndone(
                order_no=o.order_no,
                parcel_no=last.parcel_no,
                sku=line.sku,
                qty=last.qty,
                operator=self.who(),
                reason="undone at the bench",
            )
        )
        self.tell(
            "ok",
            f"Took back {last.qty} × {_item_words(line)}: {line.verified} of {line.qty} "
            "verified — take it out of the parcel",
        )

    def cancel(self) -> None:
        if self.s.pending is not None:
            self.undo()
            return
        if self.s.returning is not None:
            self.s.returning = None
            self.tell("ok", "Return inspection stopped; nothing recorded")
            return
        o = self.need_order("CMD-CANCEL")
        if o is None:
            return
        voided = self.void_unshipped(o, reason="order cancelled at the bench")
        self.events.append(
            PackingAbandoned(
                order_no=o.order_no, operator=self.who(), reason="cancelled at the bench"
            )
        )
        self.s.prints = [p for p in self.s.prints if p.order.order_no != o.order_no]
        self.s.failed_prints = [p for p in self.s.failed_prints if p.order.order_no != o.order_no]
        self.s.order = None
        self.s.last_order_no = o.order_no
        aside = " — its printed label is void, tear it up" if voided else ""
        self.tell("ok", f"Stopped packing {o.order_no}: put it aside{aside}")

    def void_unshipped(self, o: OrderInProgress, *, reason: str) -> int:
        """Void every printed waybill of ``o`` whose parcel has not shipped."""
        count = 0
        for parcel in o.parcels:
            if parcel.label == "printed" and not parcel.shipped:
                self.record_void(o, parcel, reason=reason)
                count += 1
        return count

    def record_void(self, o: OrderInProgress, parcel: ParcelProgress, *, reason: str) -> None:
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

    def logout(self) -> None:
        if not self.s.operator:
            self.refuse("no_operator", "Nobody is logged in")
            return
        self.events.append(OperatorLogout(operator=self.s.operator))
        who = self.s.operator
        self.s.operator = None
        self.s.pending = None
        held = f" — {self.s.order.order_no} waits for the next badge" if self.s.order else ""
        self.tell("ok", f"Goodbye {who}{held}")

    def next_parcel(self) -> None:
        o = self.need_order("CMD-NEXT-PARCEL")
        if o is None:
            return
        if not self.can_pack(o):
            return
        parcel = o.parcel(o.current)
        m = len(o.parcels)
        if o.verified_all:
            self.refuse("nothing_open", "Every item is verified — there is no next parcel")
            return
        if not parcel.contents:
            self.refuse("parcel_empty", f"Parcel {o.current} is empty — pack an item in it first")
            return
        if o.current >= m:
            self.refuse(
                "last_parcel",
                f"{o.order_no} ships in {_plural(m, 'parcel')}: parcel {o.current} takes the rest",
            )
            return
        if not o.qc_pending and not self.printer_ready():
            return
        parcel.closed = True
        o.current += 1
        if o.qc_pending:
            parcel.label = "waiting_qc"
            self.tell(
                "ok",
                f"Parcel {parcel.parcel_no} closed (label after QC) — pack parcel "
                f"{o.current} of {m}",
            )
        else:
            self.print_waybill(o, parcel, reprint=False)
            self.tell(
                "ok",
                f"Parcel {parcel.parcel_no} closed, its label is printing — pack "
                f"parcel {o.current} of {m}",
            )

    def reprint(self) -> None:
        if self.s.failed_prints:
            if not self.printer_ready():
                return
            again, self.s.failed_prints = self.s.failed_prints, []
            for request in again:
                self.prints.append(request.model_copy(update={"error": ""}))
                self.mark_printing(request)
            self.tell("ok", f"Printing {_plural(len(again), 'label')} again")
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
        o = self.s.order
        if o is not None and o.order_no == last.order_no:
            return o.order, o.jobs
        facts = self.world.last
        if facts is not None and facts.order.order_no == last.order_no:
            return facts.order, list(facts.printed_jobs)
        return None, []

    def mark_printing(self, request: PrintRequest) -> None:
        o = self.s.order
        if request.kind == "waybill" and o is not None and o.order_no == request.order.order_no:
            assert request.parcel_no is not None
            parcel = o.parcel(request.parcel_no)
            if parcel.label_job == request.job_id:
                parcel.label = "printing"
                parcel.label_error = ""

    def start_void(self) -> None:
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
        self.s.pending = None
        o = self.s.order
        if o is not None:
            for parcel in o.parcels:
                tracking = o.order.parcel_tracking(parcel.parcel_no)
                if parcel.label == "printed" and code.matches(tracking):
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

    def start_force(self) -> None:
        o = self.need_order("CMD-FORCE")
        if o is None or not self.can_pack(o):
            return
        if o.verified_all:
            self.refuse("nothing_open", "Every item is verified — nothing to force")
            return
        self.s.pending = Pending(kind="force")
        self.tell("ok", "Force verify: a supervisor scans their badge")

    def force_line(self, code: ScannedCode) -> None:
        pending, o = self.s.pending, self.s.order
        assert pending is not None and o is not None
        if pending.supervisor is None:
            self.refuse("not_supervisor", "Force verify: a supervisor scans their badge first")
            return
        for i, line in enumerate(o.lines):
            if line.open and (code.matches(line.code) or code.text == line.sku):
                self.force(o, i, pending.supervisor)
                return
        self.refuse("not_in_order", f"{shown(code.text)} is not an open line of {o.order_no}")

    def force(self, o: OrderInProgress, index: int, supervisor: str) -> None:
        line = o.lines[index]
        self.s.pending = None
        self.verify(o, index, line.open, barcode="", forced_by=supervisor)

    def quantity(self, qty: int) -> None:
        o = self.need_order(f"CMD-QTY-{qty}")
        if o is None or not self.can_pack(o):
            return
        self.s.pending = Pending(kind="qty", qty=qty)
        self.tell("ok", f"Now scan the item: {qty} will be counted")

    def qc(self, result: Literal["pass", "fail"]) -> None:
        o = self.need_order("QC")
        if o is None:
            return
        if not o.qc_required:
            self.refuse("qc_not_needed", f"{o.order_no} was not chosen for QC")
            return
        if not o.verified_all:
            self.refuse("qc_pending", "QC comes when every item is verified")
            return
        if o.qc_passed:
            self.tell("info", f"{o.order_no} passed QC already")
            return
        if o.qc_checker is None:
            self.refuse("qc_pending", "QC: the second person scans their badge first")
            return
        checker = o.qc_checker
        note = "" if result == "pass" else "sent back for repacking"
        self.events.append(
            QcChecked(
                order_no=o.order_no, result=result, by=checker, note=note, operator=self.who()
            )
        )
        if result == "fail":
            self.repack(o)
            self.tell("ok", f"QC failed by {checker}: repack {o.order_no} — scan every item again")
            return
        o.qc_passed = True
        waiting = [p for p in o.parcels if p.closed and p.label == "waiting_qc"]
        for parcel in waiting:
            self.print_waybill(o, parcel, reprint=False)
        self.tell("ok", f"QC passed by {checker} — printing {_plural(len(waiting), 'label')}")

    def repack(self, o: OrderInProgress) -> None:
        """QC failed: every count is taken back and the order is packed again."""
        for parcel in o.parcels:
            for sku, qty in sorted(parcel.contents.items()):
                self.events.append(
                    ItemUndone(
                        order_no=o.order_no,
                        parcel_no=parcel.parcel_no,
                        sku=sku,
                        qty=qty,
                        operator=self.who(),
                        reason="QC failed",
                    )
                )
            parcel.contents = {}
            parcel.closed = False
            parcel.label = "none"
        for line in o.lines:
            line.verified = 0
        o.history = []
        o.current = 1
        o.qc_checker = None

    def start_return(self) -> None:
        if self.s.order is not None:
            self.refuse(
                "order_in_progress",
                f"Finish {self.s.order.order_no} first (or CMD-CANCEL it), then CMD-RETURN",
            )
            return
        self.s.returning = ReturnInProgress()
        self.tell("ok", "Return: scan the returned parcel's tracking or order number")

    def return_outcome(self, outcome: ReturnOutcome) -> None:
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

    def report(self, problem: Literal["damaged", "stock_out"]) -> None:
        o = self.need_order("reporting a problem")
        if o is None:
            return
        words = {"damaged": "goods damaged", "stock_out": "item out of stock"}[problem]
        self.events.append(
            ProblemReported(
                order_no=o.order_no,
                problem=problem,
                note="reported at the bench",
                operator=self.who(),
            )
        )
        self.tell(
            "ok",
            f"Reported to central: {o.order_no} {words} — put it aside with CMD-CANCEL, or "
            "carry on",
        )

    # -- an order in progress ----------------------------------------------------------

    def can_pack(self, o: OrderInProgress) -> bool:
        if o.blocked:
            self.refuse("order_changed", o.blocked)
            return False
        return True

    def can_ship_labels(self, o: OrderInProgress) -> bool:
        return self.can_pack(o)

    def waiting_for_confirm(self, o: OrderInProgress) -> ParcelProgress | None:
        if self.rules.confirm != "scan" or o.qc_pending:
            return None
        for parcel in o.parcels:
            if parcel.label == "printed" and not parcel.shipped:
                return parcel
        return None

    def order_scan(self, o: OrderInProgress, code: ScannedCode) -> None:
        named = self.world.order
        if code.matches(o.order_no):
            self.tell("info", f"Already packing {o.order_no} — {next_step(self.s, self.rules)}")
            return
        tracked = [p for p in o.parcels if code.matches(o.order.parcel_tracking(p.parcel_no))]
        if tracked:
            self.waybill_scan(o, tracked)
            return
        if named is not None and named.order.order_no != o.order_no:
            self.refuse(
                "order_in_progress",
                f"Finish {o.order_no} first, or CMD-CANCEL it — then scan {named.order.order_no}",
            )
            return
        if not self.can_pack(o):
            return
        stale = [p for p in o.parcels if self.stale(o, p)]
        if stale:
            self.refuse(
                "label_outdated",
                f"The order changed at central: void the label of parcel {stale[0].parcel_no} "
                "(CMD-VOID, then scan it) before packing on",
            )
            return
        waiting = self.waiting_for_confirm(o)
        if waiting is not None:
            self.refuse(
                "confirm_pending",
                f"Stick the label on parcel {waiting.parcel_no} and scan it first",
            )
            return
        self.item_scan(o, code)

    def stale(self, o: OrderInProgress, parcel: ParcelProgress) -> bool:
        return (
            parcel.label == "printed"
            and not parcel.shipped
            and parcel.label_revision < o.order.revision
        )

    def waybill_scan(self, o: OrderInProgress, parcels: list[ParcelProgress]) -> None:
        # The packer scanned a waybill of this order: the label on the box (confirm).
        for parcel in parcels:
            if parcel.label == "printed" and not parcel.shipped:
                if not self.can_pack(o):
                    return
                if self.stale(o, parcel):
                    self.refuse(
                        "label_outdated",
                        "This label is out of date (the order changed) — void it (CMD-VOID) "
                        "and print a new one",
                    )
                    return
                if self.rules.confirm != "scan" or o.qc_pending:
                    break
                self.ship(o, parcel, confirm="scan")
                self.after_ship(o)
                return
        if any(p.label == "voided" and not p.shipped for p in parcels):
            self.refuse(
                "voided_label",
                "This label was voided — print a new one (CMD-REPRINT) and scan that",
            )
            return
        self.tell("info", f"Already packing {o.order_no} — {next_step(self.s, self.rules)}")

    def item_scan(self, o: OrderInProgress, code: ScannedCode) -> None:
        qty = self.s.pending.qty if self.s.pending and self.s.pending.kind == "qty" else 1
        if o.verified_all:
            self.alarm(
                "extra_item",
                f"Extra item: every item of {o.order_no} is already verified — take it out, "
                "then scan CMD-OK",
            )
            return
        named = [
            i for i, line in enumerate(o.lines) if code.matches(line.code) or code.text == line.sku
        ]
        index = next((i for i in named if o.lines[i].open), named[0] if named else None)
        if index is None:
            what = (
                f"{self.world.product} ({shown(code.text)})"
                if self.world.product
                else shown(code.text)
            )
            self.alarm(
                "wrong_item",
                f"Wrong item: {what} is not in order {o.order_no} — take it out, then scan CMD-OK",
            )
            return
        line = o.lines[index]
        if qty > line.open:
            self.s.pending = None
            have = (
                f"only {line.open} still open"
                if line.open
                else f"all {line.qty} are already verified"
            )
            self.alarm(
                "over_quantity",
                f"Too many: {_item_words(line)} — {have}. Take the extra out, then scan CMD-OK",
            )
            return
        completes = o.items_open == qty
        if completes and o.current < len(o.parcels):
            self.refuse(
                "parcel_needed",
                f"{o.order_no} ships in {_plural(len(o.parcels), 'parcel')}: close parcel "
                f"{o.current} with CMD-NEXT-PARCEL before packing the last item",
            )
            return
        if completes and not o.qc_pending and not self.printer_ready():
            return
        self.s.pending = None
        self.verify(o, index, qty, barcode=code.text)

    def verify(
        self,
        o: OrderInProgress,
        index: int,
        qty: int,
        *,
        barcode: str,
        forced_by: str | None = None,
    ) -> None:
        line = o.lines[index]
        parcel = o.parcel(o.current)
        line.verified += qty
        parcel.contents[line.sku] = parcel.contents.get(line.sku, 0) + qty
        o.history.append(VerifyStep(line=index, parcel_no=o.current, qty=qty, forced_by=forced_by))
        self.events.append(
            ItemVerified(
                order_no=o.order_no,
                parcel_no=o.current,
                sku=line.sku,
                barcode=shown(barcode),
                qty=qty,
                operator=self.who(),
                forced_by=forced_by,
                reason="forced by a supervisor: the item's barcode would not scan"
                if forced_by
                else "",
            )
        )
        forced = f" (forced by {forced_by})" if forced_by else ""
        if not o.verified_all:
            self.tell(
                "ok",
                f"✓ {_item_words(line)}{forced}: {line.verified} of {line.qty} — "
                f"{_plural(o.items_open, 'item')} to go",
            )
            return
        parcel.closed = True
        if not o.packed:
            o.packed = True
            self.events.append(
                OrderPacked(order_no=o.order_no, operator=self.who(), parcel_count=len(o.parcels))
            )
        if o.qc_pending:
            parcel.label = "waiting_qc"
            self.tell(
                "ok",
                f"✓ All items of {o.order_no} verified — QC: a second person scans their badge",
            )
            return
        self.print_waybill(o, parcel, reprint=False)
        self.tell("ok", f"✓ All items of {o.order_no} verified — printing the label")

    def ship(self, o: OrderInProgress, parcel: ParcelProgress, *, confirm: str) -> None:
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

    # -- starting an order -------------------------------------------------------------

    def start_order(self, code: ScannedCode) -> None:
        facts = self.world.order
        if facts is None:
            if self.world.product:
                self.refuse(
                    "no_order",
                    f"Scan the order first — {self.world.product} ({shown(code.text)}) is an item",
                )
                return
            self.refuse(
                "unknown_code",
                f"unknown order {shown(code.text)}: not in this station's orders — check the "
                "number, or put the parcel aside until central sends it",
            )
            return
        order = facts.order
        reasons = packing_blockers(order)
        if reasons:
            self.refuse(
                "not_packable",
                f"cannot pack {order.order_no}: {'; '.join(reasons)} — put this order aside",
                order_no=order.order_no,
            )
            return
        shipped = {p.parcel_no: p for p in facts.shipped}
        if len(shipped) >= order.parcel_count:
            last = max(p.shipped_at for p in facts.shipped)
            self.refuse(
                "already_shipped",
                f"{order.order_no} already shipped at {_clock(last)} — do not ship it again",
                order_no=order.order_no,
            )
            return
        o = _new_progress(order, facts, rules=self.rules)
        self.s.order = o
        self.s.last_order_no = None
        self.events.append(
            OrderStarted(
                order_no=order.order_no,
                operator=self.who(),
                revision=order.revision,
                parcel_count=order.parcel_count,
                qc=o.qc_required,
                resumed=bool(shipped),
            )
        )
        if self.rules.print_packing_list:
            self.print_job("packing_list", order, used=o.jobs, qc=o.qc_required)
        parcels = f" in {_plural(order.parcel_count, 'parcel')}" if order.parcel_count > 1 else ""
        qc = " — chosen for QC" if o.qc_required else ""
        self.tell(
            "ok",
            f"Packing {order.order_no}: {_plural(o.items_open, 'item')}{parcels}{qc} — scan "
            "each item",
        )

    # -- returns (B8) --------------------------------------------------------------------

    def return_scan(self, code: ScannedCode) -> None:
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

    # -- print results -------------------------------------------------------------------

    def take_print(self, job_id: str) -> PrintRequest | None:
        for i, request in enumerate(self.s.prints):
            if request.job_id == job_id:
                return self.s.prints.pop(i)
        return None

    def printed(self, done: PrintDone) -> None:
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
        if not self.s.failed_prints:
            return
        again, self.s.failed_prints = self.s.failed_prints, []
        for request in again:
            self.prints.append(request.model_copy(update={"error": ""}))
            self.mark_printing(request)
        self.tell("info", f"Printer ready — printing {_plural(len(again), 'label')}")

    # -- orders changed at central -------------------------------------------------------

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

    def order_changed(self, order: Order) -> None:
        o = self.s.order
        if o is None or o.order_no != order.order_no or order.revision <= o.order.revision:
            return
        old = o.order
        o.order = order
        self.refresh_failed(o)
        reasons = packing_blockers(order)
        same_lines = [(ln.sku, ln.qty) for ln in old.lines] == [
            (ln.sku, ln.qty) for ln in order.lines
        ] and old.parcel_count == order.parcel_count
        if not same_lines:
            o.blocked = (
                f"{order.order_no} changed at central (its items or parcels): CMD-CANCEL and "
                "scan it again"
            )
        elif reasons:
            o.blocked = (
                f"Central changed {order.order_no}: {'; '.join(reasons)} — do not ship it. "
                "Void its printed labels (CMD-VOID) and put it aside (CMD-CANCEL)"
            )
        else:
            o.blocked = ""
        stale = [p for p in o.parcels if self.stale(o, p)]
        if o.blocked or stale:
            message = o.blocked or (
                f"{order.order_no} changed at central (new address or details): void the "
                f"printed label (CMD-VOID, then scan it) and print a new one (CMD-REPRINT)"
            )
            self.s.alarm = Alarm(code="order_changed", message=message, order_no=order.order_no)
            self.tell("alarm", message, "order_changed")


def _new_progress(order: Order, facts: OrderFacts, *, rules: BenchRules) -> OrderInProgress:
    shipped = {p.parcel_no: p for p in facts.shipped}
    lines = [
        LineProgress(sku=ln.sku, code=ln.scan_code, name=ln.name, qty=ln.qty) for ln in order.lines
    ]
    parcels = []
    for n in range(1, order.parcel_count + 1):
        done = shipped.get(n)
        parcel = ParcelProgress(parcel_no=n)
        if done is not None:
            parcel.contents = dict(done.contents)
            parcel.closed = parcel.shipped = True
            parcel.label = "printed"
            for line in lines:
                taken = min(line.open, parcel.contents.get(line.sku, 0))
                line.verified += taken
        parcels.append(parcel)
    current = next((p.parcel_no for p in parcels if not p.shipped), order.parcel_count)
    return OrderInProgress(
        order=order,
        lines=lines,
        parcels=parcels,
        current=current,
        jobs=list(facts.printed_jobs),
        qc_required=qc_selected(order.order_no, seed=rules.site_seed, rate=rules.qc_rate),
        packed=False,
    )


# --------------------------------------------------------------------------- entry points


def step(
    state: BenchState, event: Input, *, rules: BenchRules, world: World, now: float
) -> Decision:
    """The bench's answer to ``event``: new state, events, prints and feedback.

    ``state`` is not changed; ``world`` is what the agent looked up for this input and
    ``now`` the wall clock (for the words the packer reads, e.g. "shipped at 14:05").
    """
    draft = _Step(state, rules=rules, world=world, now=now)
    if isinstance(event, Scan):
        draft.scan(event.text)
    elif isinstance(event, Unreadable):
        draft.text = event.raw
        draft.refuse("unreadable", f"unreadable scan ({event.reason}): scan again")
    elif isinstance(event, PrintDone):
        draft.printed(event)
    elif isinstance(event, PrintFailed):
        draft.print_failed(event)
    elif isinstance(event, OrderChanged):
        draft.order_changed(event.order)
    elif isinstance(event, PrinterReady):
        draft.printer_back()
    else:  # Resume
        draft.s.restarted = draft.s.order is not None or draft.s.returning is not None
    return draft.decision()


def next_step(state: BenchState, rules: BenchRules) -> str:
    """What the packer should scan next, in their words (the kiosk's big line)."""
    if state.alarm is not None:
        return "take the item out, then scan CMD-OK"
    if rules.require_operator and not state.operator:
        return f"scan your badge ({rules.badge_prefix}…)"
    pending = state.pending
    if pending is not None:
        if pending.kind == "void":
            return "scan the barcode of the label to void"
        if pending.kind == "force":
            if pending.supervisor is None:
                return "a supervisor scans their badge"
            return "scan the line's code on the packing list"
        return f"scan the item: {pending.qty} will be counted"
    r = state.returning
    if r is not None:
        if r.order is None:
            return "scan the returned parcel's tracking or order number"
        return "scan each returned item, then CMD-RESTOCK, CMD-DAMAGED or CMD-WRONG-ITEM"
    o = state.order
    if o is None:
        return "scan an order or its waybill"
    if o.blocked:
        return o.blocked
    for parcel in o.parcels:
        if (
            parcel.label == "printed"
            and not parcel.shipped
            and parcel.label_revision < o.order.revision
        ):
            return f"void the old label of parcel {parcel.parcel_no}: CMD-VOID, then scan it"
    if any(p.label == "failed" for p in o.parcels):
        return "fix the printer — the label prints when it is ready (or scan CMD-REPRINT)"
    if any(p.label == "voided" and p.closed for p in o.parcels):
        return "scan CMD-REPRINT for the new label"
    if rules.confirm == "scan" and not o.qc_pending:
        for parcel in o.parcels:
            if parcel.label == "printed" and not parcel.shipped:
                return f"stick the label on parcel {parcel.parcel_no} and scan it"
    printing = [p.parcel_no for p in o.parcels if p.label == "printing"]
    if o.verified_all:
        if o.qc_pending:
            if o.qc_checker is None:
                return "QC: a second person scans their badge"
            return "QC: scan CMD-QC-PASS or CMD-QC-FAIL"
        if printing:
            return f"printing the label of parcel {printing[0]}…"
        return "scan an order or its waybill"
    left = o.items_open
    into = f" into parcel {o.current} of {len(o.parcels)}" if len(o.parcels) > 1 else ""
    return f"scan the next item{into} ({_plural(left, 'item')} to go)"
