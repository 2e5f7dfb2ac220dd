"""The bench workflow (B1–B8) as a pure state machine: state + input → decision.

The step is built in parts: :mod:`edge.bench.draft` (what a step collects and the
shared acts: refuse, alarm, print, ship), :mod:`edge.bench.printing` (print results,
reprint, void), :mod:`edge.bench.returns` (B8), and this module (scans, badges,
commands, verifying and parcels, QC, central's changes, and :func:`step`).

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

from collections.abc import Callable
from typing import Literal

from edge.bench.codes import ScannedCode, normalise, shown
from edge.bench.commands import BadCommand, Cmd, Command, parse_command
from edge.bench.draft import clock_words, item_words, plural
from edge.bench.guide import next_step
from edge.bench.inputs import (
    BenchRules,
    Decision,
    Input,
    OrderChanged,
    OrderFacts,
    PrintDone,
    PrinterReady,
    PrintFailed,
    Scan,
    Unreadable,
    World,
)
from edge.bench.returns import Returns
from edge.bench.state import (
    Alarm,
    BenchState,
    LineProgress,
    OrderInProgress,
    ParcelProgress,
    Pending,
    VerifyStep,
)
from sync.events import (
    AlarmAcknowledged,
    ItemUndone,
    ItemVerified,
    OperatorLogin,
    OperatorLogout,
    OrderPacked,
    OrderStarted,
    PackingAbandoned,
    ProblemReported,
    QcChecked,
)
from sync.order import Order, ReturnOutcome, packing_blockers
from sync.qc import qc_selected

__all__ = ["step"]

# --------------------------------------------------------------------------- the step


class _Step(Returns):
    """One step: scans, badges, commands and the order in progress (the rest is in
    the parts it builds on: labels, returns, the draft)."""

    # -- scans -----------------------------------------------------------------------

    def scan(self, raw: str) -> None:
        """One scanned code, by the precedence in the module's docstring."""
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
        """``CMD-OK`` under an alarm."""
        alarm = self.s.alarm
        assert alarm is not None
        self.events.append(
            AlarmAcknowledged(order_no=alarm.order_no, code=alarm.code, operator=self.who())
        )
        self.s.alarm = None
        self.tell("ok", f"Alarm cleared — {next_step(self.s, self.rules)}")

    # -- badges ----------------------------------------------------------------------

    def is_supervisor(self, badge: str) -> bool:
        """Whether ``badge`` is in ``supervisor_badges`` (with or without prefix)."""
        prefix = self.rules.badge_prefix.upper()
        names = {b.upper().removeprefix(prefix) for b in self.rules.supervisor_badges if b}
        return badge.upper() in names

    def badge(self, badge: str) -> None:
        """A badge: the supervisor of a force, the QC checker, or a login."""
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
        """A command barcode, by its table."""
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
        """The order in progress, or None with the scan refused."""
        if self.s.order is None:
            self.refuse("no_order", f"No order in progress — {what} needs one")
            return None
        return self.s.order

    def undo(self) -> None:
        """``CMD-UNDO``: a pending command, a returned item, or the last counted scan."""
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
            f"Took back {last.qty} × {item_words(line)}: {line.verified} of {line.qty} "
            "verified — take it out of the parcel",
        )

    def cancel(self) -> None:
        """``CMD-CANCEL``: a pending command, a return, or the order in progress."""
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

    def logout(self) -> None:
        """``CMD-LOGOUT``."""
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
        """``CMD-NEXT-PARCEL``: close the parcel (its waybill prints), start the next."""
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
                f"{o.order_no} ships in {plural(m, 'parcel')}: parcel {o.current} takes the rest",
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

    def start_force(self) -> None:
        """``CMD-FORCE``: a supervisor's badge comes next."""
        o = self.need_order("CMD-FORCE")
        if o is None or not self.can_pack(o):
            return
        if o.verified_all:
            self.refuse("nothing_open", "Every item is verified — nothing to force")
            return
        self.s.pending = Pending(kind="force")
        self.tell("ok", "Force verify: a supervisor scans their badge")

    def force_line(self, code: ScannedCode) -> None:
        """The line to force, scanned after the supervisor's badge."""
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
        """Count a line's open items as verified, recorded with the supervisor."""
        line = o.lines[index]
        self.s.pending = None
        self.verify(o, index, line.open, barcode="", forced_by=supervisor)

    def quantity(self, qty: int) -> None:
        """``CMD-QTY-n``: the next item scan counts n."""
        o = self.need_order(f"CMD-QTY-{qty}")
        if o is None or not self.can_pack(o):
            return
        self.s.pending = Pending(kind="qty", qty=qty)
        self.tell("ok", f"Now scan the item: {qty} will be counted")

    def qc(self, result: Literal["pass", "fail"]) -> None:
        """``CMD-QC-PASS`` / ``CMD-QC-FAIL`` by the checker whose badge was scanned."""
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
        self.tell("ok", f"QC passed by {checker} — printing {plural(len(waiting), 'label')}")

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

    def report(self, problem: Literal["damaged", "stock_out"]) -> None:
        """``CMD-EXCEPTION-...``: report a problem with the order in progress."""
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

    def can_ship_labels(self, o: OrderInProgress) -> bool:
        """Whether labels of ``o`` may be printed now (not blocked by central)."""
        return self.can_pack(o)

    def waiting_for_confirm(self, o: OrderInProgress) -> ParcelProgress | None:
        """The parcel whose printed waybill waits to be scanned (``confirm = scan``)."""
        if self.rules.confirm != "scan" or o.qc_pending:
            return None
        for parcel in o.parcels:
            if parcel.label == "printed" and not parcel.shipped:
                return parcel
        return None

    def order_scan(self, o: OrderInProgress, code: ScannedCode) -> None:
        """A scan while an order is in progress: its waybill, another order, or an item."""
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

    def waybill_scan(self, o: OrderInProgress, parcels: list[ParcelProgress]) -> None:
        """A waybill of the order in progress: the label on the box (confirm)."""
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
        """An item against the open lines (B4)."""
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
                f"Too many: {item_words(line)} — {have}. Take the extra out, then scan CMD-OK",
            )
            return
        completes = o.items_open == qty
        if completes and o.current < len(o.parcels):
            self.refuse(
                "parcel_needed",
                f"{o.order_no} ships in {plural(len(o.parcels), 'parcel')}: close parcel "
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
        """Count ``qty`` items of line ``index`` into the current parcel."""
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
                f"✓ {item_words(line)}{forced}: {line.verified} of {line.qty} — "
                f"{plural(o.items_open, 'item')} to go",
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

    # -- starting an order -------------------------------------------------------------

    def start_order(self, code: ScannedCode) -> None:
        """An order or tracking number while idle: audit (B1), start."""
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
                f"{order.order_no} already shipped at {clock_words(last)} — do not ship it again",
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
        parcels = f" in {plural(order.parcel_count, 'parcel')}" if order.parcel_count > 1 else ""
        qc = " — chosen for QC" if o.qc_required else ""
        self.tell(
            "ok",
            f"Packing {order.order_no}: {plural(o.items_open, 'item')}{parcels}{qc} — scan "
            "each item",
        )

    # -- orders changed at central -------------------------------------------------------

    def order_changed(self, order: Order) -> None:
        """A newer revision from central of the order in progress."""
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
