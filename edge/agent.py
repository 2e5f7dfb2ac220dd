"""The packing station's agent: scans in, labels out, every fact recorded.

The agent runs the parts it is handed (:func:`edge.factory.build_agent` builds them
from the settings): the scanner loop on its own thread, the bench workflow
(:mod:`edge.bench`, a pure state machine) fed one input at a time, the printer's
health polled at an interval (:mod:`edge.health`), and the uplink
(:mod:`edge.uplink`) delivering records to central in the background whenever it can.
The bench never waits on the network.

For every input the agent looks up what the workflow needs (the order a code names,
its shipped parcels and print jobs, the printer's readiness), calls
:func:`edge.bench.step`, records the events and the new state in ONE transaction,
then prints what the step asked for and feeds each print's result back in. So a kill
at any point leaves either the state before the step or the state after it, and a
label decided but not yet printed is printed (once: its job id is fixed) after a
restart.

:meth:`Agent.view` is the packer's screen as data; :attr:`Agent.changes` says when it
changed (the kiosk page renders one and follows the other).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from drivers.errors import LabelDoesNotFit, PrinterError
from drivers.labels import render
from drivers.labels.sizes import LabelSize
from drivers.printers.base import Printer, PrintJob
from drivers.scanners.base import Scanner, UnreadableScan
from edge.bench import (
    BenchRules,
    BenchState,
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
    Unreadable,
    World,
    normalise,
    step,
)
from edge.clock import Clock
from edge.health import DeviceChange, DeviceHealth
from edge.settings import StationSettings
from edge.store import WRITERS, StationStore
from edge.uplink import Uplink
from edge.view import (
    CLOCK_SKEW_SHOWN,
    BenchView,
    DevicesView,
    SyncView,
    ViewChanges,
    build_view,
)
from sync import sdnotify
from sync.events import DeviceState
from sync.order import Order

__all__ = ["Agent", "log_feedback"]

log = logging.getLogger(__name__)
bench_log = logging.getLogger("packline.bench")

# How long one scanner read waits, so stop() and health polling are noticed.
READ_TIMEOUT = 0.5
#: A scanner loop silent this long (a print or a device call hung) is unhealthy.
LOOP_STALLED_AFTER = 60.0
# How often (monotonic seconds) shipped orders are checked for customer data to erase.
PURGE_EVERY = 600.0

_LOG_WORDS = {"ok": "OK     ", "done": "OK     ", "info": "OK     ", "refused": "REFUSED"}


def log_feedback(feedback: Feedback) -> None:
    """Tell the packer through the ``packline.bench`` log: ``OK ...``, ``REFUSED ...``,
    ``ALARM ...``."""
    if feedback.outcome == "alarm":
        bench_log.warning("ALARM   %s", feedback.message)
    elif feedback.ok:
        bench_log.info("%s %s", _LOG_WORDS[feedback.outcome], feedback.message)
    else:
        bench_log.warning("REFUSED %s", feedback.message)


def rules_from(settings: StationSettings) -> BenchRules:
    """The workflow's rules from the station's settings."""
    return BenchRules(
        station=settings.station,
        badge_prefix=settings.badge_prefix,
        require_operator=settings.require_operator,
        supervisor_badges=frozenset(settings.supervisor_badges),
        print_packing_list=settings.print_packing_list,
        confirm=settings.confirm,
        qc_rate=settings.qc_rate,
        site_seed=settings.site_seed,
        default_operator=settings.operator,
    )


class Agent:
    """One packing station. Thread-safe: one input at a time behind a lock."""

    def __init__(
        self,
        *,
        settings: StationSettings,
        store: StationStore,
        printer: Printer,
        scanner: Scanner,
        devices: DeviceHealth,
        uplink: Uplink,
        clock: Clock,
        label: LabelSize,
        label_dpi: int,
        version: str,
        feedback: Callable[[Feedback], None] = log_feedback,
    ) -> None:
        self.settings = settings
        self.rules = rules_from(settings)
        self.store = store
        self.printer = printer
        self.scanner = scanner
        self.devices = devices
        self.uplink = uplink
        self.clock = clock
        self.label = label
        self.label_dpi = label_dpi
        self.version = version
        self.feedback = feedback
        #: Bumped whenever :meth:`view` would show something new.
        self.changes = ViewChanges()
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self.state = self._load_state()
        self._resumed = False
        self._told: list[Feedback] = []
        self._printing = ""
        self._printer_back = False
        self._orders_changed = False
        self._last_scan_at: float | None = None
        self._purged_at: float | None = None
        # The screen reads on its own connection: drawing it never holds the bench's lock.
        self._screen = store.screen_reader()
        devices.on_change = self._device_changed

    # -- state -------------------------------------------------------------------------

    def _load_state(self) -> BenchState:
        saved = self.store.bench_state()
        if saved is None:
            return BenchState()
        try:
            return BenchState.model_validate_json(saved)
        except ValidationError as exc:
            # Never guess at a half-known state: start clean, keep the old one in the log.
            log.error("the saved bench state cannot be read (%s); starting idle: %s", exc, saved)
            return BenchState()

    def _resume(self) -> None:
        """Once per process: mark a restart mid-order and print what was decided."""
        if self._resumed:
            return
        self._resumed = True
        if self.state.order is not None or self.state.prints:
            log.info(
                "resuming: order %s, %d label(s) to print",
                self.state.order.order_no if self.state.order else "-",
                len(self.state.prints),
            )
        self._apply(Resume(), World(printer=self._printer_check()))
        self._run_prints(list(self.state.prints))

    # -- inputs ------------------------------------------------------------------------

    def handle_scan(self, text: str) -> Feedback:
        """One scanned code through the bench workflow; returns what the packer is told."""
        with self._lock:
            self._resume()
            self._told = []
            self._after()  # central's change first: the scan is judged by the newest order
            self._told = []
            self._last_scan_at = self.clock.wall()
            self._apply(Scan(text=text), self._world(text))
            self._after()
            told = self._told[-1] if self._told else self._quiet()
        self.uplink.notify()
        return told

    def handle_unreadable(self, scan: UnreadableScan) -> Feedback:
        """A scan the scanner could not decode: refused, recorded, the packer scans again."""
        with self._lock:
            self._resume()
            self._told = []
            self._apply(Unreadable(raw=scan.raw, reason=scan.reason), World())
            told = self._told[-1] if self._told else self._quiet()
        self.uplink.notify()
        return told

    def orders_changed(self, changed: int = 0) -> None:
        """Central sent orders (called on the network thread, so it never waits for the
        bench): a newer revision of the order in progress is applied by the bench's own
        loop at once (:meth:`tick`), or before the next scan."""
        self._orders_changed = True
        self.changes.bump()

    def _quiet(self) -> Feedback:
        return Feedback(outcome="info", message="", at=self.clock.wall())

    def _apply(self, event: Input, world: World) -> None:
        decision = step(self.state, event, rules=self.rules, world=world, now=self.clock.wall())
        facts = [(e, WRITERS.get(e.TYPE)) for e in decision.events]
        self.store.record_all(facts, bench_state=decision.state.model_dump_json())
        self.state = decision.state
        if decision.feedback is not None:
            self._told.append(decision.feedback)
            self.feedback(decision.feedback)
        self.changes.bump()
        self._run_prints(list(decision.prints))

    def _after(self) -> None:
        """Work that waited for the current input: a change from central to the order in
        progress, labels the printer can now print."""
        if self._orders_changed:
            self._orders_changed = False
            o = self.state.order
            if o is not None:
                newest = self.store.order(o.order_no)
                if newest is not None and newest.revision > o.order.revision:
                    self._apply(OrderChanged(order=newest), World(printer=self._printer_check()))
        if self._printer_back:
            self._printer_back = False
            if self.state.failed_prints:
                self._apply(PrinterReady(), World(printer=self._printer_check()))

    # -- looking things up -------------------------------------------------------------

    def _facts(self, order: Order) -> OrderFacts:
        shipped = tuple(
            ShippedParcel(
                parcel_no=s.parcel_no,
                tracking_no=s.tracking_no,
                shipped_at=s.shipped_at,
                contents=s.contents,
            )
            for s in self.store.shipments(order.order_no)
        )
        return OrderFacts(
            order=order,
            shipped=shipped,
            printed_jobs=tuple(self.store.printed_jobs(order.order_no)),
        )

    def _printer_check(self, *, fresh: bool = False) -> PrinterCheck:
        ready = self.devices.readiness()
        if fresh and not ready.ready:
            # The last reading said no: the packer may have fixed it since. Read again
            # rather than refuse on an old answer (B2 reads, never assumes).
            self.devices.check_printer()
            ready = self.devices.readiness()
        return PrinterCheck(ready=ready.ready, code=ready.code, message=ready.message)

    def _world(self, text: str) -> World:
        code = normalise(text)
        found = self.store.find_order(code.text) if code.text else None
        product = None
        if found is None:
            product = self.store.product_name([c for c in (code.gtin, code.text) if c])
        last = None
        if self.state.last_order_no:
            held = self.store.order(self.state.last_order_no)
            last = self._facts(held) if held is not None else None
        return World(
            order=self._facts(found) if found is not None else None,
            last=last,
            product=product,
            printer=self._printer_check(fresh=True),
        )

    # -- printing ----------------------------------------------------------------------

    def _run_prints(self, requests: list[PrintRequest]) -> None:
        total = len(requests)
        for n, request in enumerate(requests, start=1):
            self._printing = f"printing {n} of {total}…" if total > 1 else "printing…"
            self.changes.bump()
            result = self._print(request)
            self._printing = ""
            self._apply(result, World(printer=self._printer_check()))

    def _render(self, request: PrintRequest) -> Any:
        order = request.order
        printed_at = datetime.fromtimestamp(self.clock.wall(), UTC).astimezone()
        common: dict[str, Any] = {"size": self.label.key, "dpi": self.label_dpi}
        if request.kind == "waybill":
            assert request.parcel_no is not None
            n, m = request.parcel_no, order.parcel_count
            parcel_order = order.model_copy(update={"tracking_no": order.parcel_tracking(n)})
            return render(
                "waybill",
                parcel_order,
                parcel=(n, m) if m > 1 else None,
                printed_at=printed_at,
                **common,
            )
        if request.kind == "packing_list":
            return render("packing-list", order, qc=request.qc, printed_at=printed_at, **common)
        return render("return", order, returned=request.returned, printed_at=printed_at, **common)

    def _print(self, request: PrintRequest) -> PrintDone | PrintFailed:
        ready = self.devices.readiness()
        if ready.code == "label_does_not_fit":
            return PrintFailed(job_id=request.job_id, code=ready.code, message=ready.message)
        try:
            image = self._render(request)
        except (LabelDoesNotFit, ValueError) as exc:
            return PrintFailed(job_id=request.job_id, code="label_does_not_fit", message=str(exc))
        try:
            result = self.printer.print(PrintJob(job_id=request.job_id, images=[image]))
        except PrinterError as exc:
            self.devices.note_fault(str(exc))
            return PrintFailed(
                job_id=request.job_id, code="printer_not_ready", message=f"printer: {exc}"
            )
        self.devices.note_print(result)
        return PrintDone(
            job_id=request.job_id,
            verified=result.verified,
            duplicate=result.duplicate,
            detail=result.detail,
        )

    # -- devices -------------------------------------------------------------------------

    def _device_changed(self, change: DeviceChange) -> None:
        self.store.record(
            DeviceState(
                device=change.device,
                state=change.state,
                detail=change.detail,
                model=change.model,
                serial=change.serial,
            )
        )
        words = f"{change.device} {change.state}" + (f": {change.detail}" if change.detail else "")
        (log.info if change.state == "ready" else log.warning)("%s", words)
        if change.device == "printer" and change.state == "ready":
            self._printer_back = True
        self.changes.bump()
        self.uplink.notify()

    # -- what others read ----------------------------------------------------------------

    def view(self) -> BenchView:
        """The packer's screen now (JSON: ``agent.view().model_dump(mode="json")``).

        It does not wait for the bench (a print may take seconds): each step replaces
        the state as a whole, so the one read here is always complete.
        """
        state = self.state
        version = self.changes.version
        printing = self._printing
        ready = self.devices.readiness()
        report = self.devices.report()
        devices = DevicesView(
            printer=report["printer"],
            printer_detail=report["printer_detail"],
            printer_model=report["printer_model"],
            printer_ready=ready.ready,
            printer_problem=ready.message,
            labels_left=report["labels_left"],
            label_size=self.label.key,
            scanner=report["scanner"],
            scanner_detail=report["scanner_detail"],
            printing=printing,
        )
        now = self.clock.wall()
        oldest = self._screen.backlog_oldest_at()
        skew = self.uplink.clock_skew_s
        conflict = self.uplink.name_conflict or None
        sync = SyncView(
            backlog=self._screen.backlog(),
            oldest_unsent_at=oldest,
            oldest_unsent_age_s=None if oldest is None else max(0.0, now - oldest),
            broker=self.uplink.broker_state,
            link="name_conflict" if conflict else self.uplink.link,
            clock_skew_s=skew,
            clock_skew_large=skew is not None and abs(skew) > CLOCK_SKEW_SHOWN,
            name_conflict=conflict,
        )
        current = state.order.order_no if state.order else None
        return build_view(
            state,
            rules=self.rules,
            site=self.settings.site,
            version=version,
            now=now,
            devices=devices,
            sync=sync,
            next_orders=self._screen.next_to_pack(limit=8, exclude=current),
        )

    def health(self) -> dict[str, Any]:
        """The device and bench part of the station status."""
        state = self.state
        return {
            **self.devices.report(),
            "operator": state.operator,
            "order_in_progress": state.order.order_no if state.order else None,
            "last_scan_at": self._last_scan_at,
        }

    # -- running -------------------------------------------------------------------------

    def purge_pii(self) -> int:
        """Erase customer data of orders shipped more than ``pii_retention_hours`` ago (C1)."""
        older_than = self.clock.wall() - self.settings.pii_retention_hours * 3600
        purged = self.store.purge_pii(older_than=older_than)
        if purged:
            log.info("erased recipient data of %d shipped order(s) (C1)", purged)
            self.uplink.notify()
        self._purged_at = self.clock.mono()
        return purged

    def tick(self) -> None:
        """The loop's periodic work: printer health, labels waiting for the printer, C1."""
        self.devices.poll()
        with self._lock:
            self._resume()
            self._after()
        if self._purged_at is None or self.clock.mono() - self._purged_at >= PURGE_EVERY:
            self.purge_pii()

    def run(self) -> None:
        """Run until :meth:`stop`: scanner loop in this thread, sync in the background."""
        log.info(
            "station %s (site %s, packline %s): %d orders, backlog %d, scanner %s, printer %s,"
            " label %s at %d dpi",
            self.settings.station,
            self.settings.site,
            self.version,
            self.store.order_count(),
            self.store.backlog(),
            self.settings.scanner,
            self.settings.printer,
            self.label.key,
            self.label_dpi,
        )
        self.devices.check_printer()
        with self._lock:
            self._resume()
        self.uplink.start()
        # systemd (Type=notify): up now; its watchdog is fed while the scanner loop goes
        # round and the uplink thread lives, so a hung loop gets the agent restarted.
        beat = sdnotify.Heartbeat("the scanner loop", max_age=LOOP_STALLED_AFTER)
        watchdog = sdnotify.Watchdog(
            {
                "scanner loop": beat.probe,
                "uplink": sdnotify.thread_probe("uplink", lambda: self.uplink.thread),
            }
        )
        watchdog.start()
        sdnotify.ready(f"station {self.settings.station} packing")
        try:
            while not self._stop.is_set():
                beat.beat()
                scan = self.scanner.read(timeout=READ_TIMEOUT)
                if scan is not None:
                    self.handle_scan(scan.text)
                self.tick()
        finally:
            sdnotify.stopping()
            watchdog.stop()
            self.close()

    def stop(self) -> None:
        """Ask :meth:`run` to return."""
        self._stop.set()

    def close(self) -> None:
        """Close every part: scanner, uplink (an orderly offline status), printer, store."""
        self.scanner.close()
        self.uplink.stop()
        self.printer.close()
        self._screen.close()
        self.store.close()
