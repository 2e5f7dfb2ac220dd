"""Is this station set up to work? The checks of ``edge check`` and of ``edge run``'s start.

Two kinds of finding:

- **can never work** (``fatal``): a label size the printer cannot print, a resolution
  that is not the printer's (a 300-dpi QL fed 203-dpi labels prints them two thirds
  the size and says "OK"), a store that cannot be opened. ``edge run`` stops with one
  line and exit code 2; nothing is printed wrong.
- **not working now**: the scanner is not plugged in, the printer is off or has the
  wrong roll loaded, the broker is not reachable. These are states the bench shows
  and recovers from; ``edge check`` lists them with what to do.

The packer's screen's address (``kiosk_listen``) is checked too: ``edge check`` says
when its port is taken; ``edge run`` takes it first and stops there (docs/station.md).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from drivers.errors import DriverError
from drivers.labels.sizes import LabelSize, label_size
from drivers.printers.base import Printer
from edge.health import media_problem
from edge.settings import StationSettings
from sync.errors import UserError

__all__ = [
    "DEFAULT_LABEL",
    "CannotWork",
    "Finding",
    "check_broker",
    "check_kiosk",
    "check_station",
    "resolve_label",
]

log = logging.getLogger(__name__)

DEFAULT_LABEL = "100x180"
"""The label a station prints when neither the settings nor the printer name one."""


class CannotWork(UserError):
    """A setting that can never work with this station's devices; ``str()`` says what
    to change."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Finding:
    """One line of the report: what was checked, whether it is fine, what to do."""

    what: str
    ok: bool
    message: str
    fix: str = ""
    fatal: bool = False


def resolve_label(settings: StationSettings, printer: Printer) -> tuple[LabelSize, int]:
    """The label size and resolution this station renders at.

    Both default to the printer's own (a Brother QL's ``label=`` and its 300 dpi, a
    ZPL printer's ``dpi=``). Raises :class:`CannotWork` when the settings name a label
    or resolution the printer cannot print.
    """
    key = settings.label_size or printer.label_key or DEFAULT_LABEL
    size = label_size(key)
    if printer.label_key is not None:
        loaded = label_size(printer.label_key)
        if size.key != loaded.key:
            raise CannotWork(
                f"label_size {key} cannot be printed: the printer is set up for "
                f"{loaded.description or loaded.key} (label={printer.label_key} in its URL) — "
                f'set label_size = "{loaded.key}" or leave it out'
            )
    dpi = settings.label_dpi or printer.dpi or 300
    if printer.dpi is not None and dpi != printer.dpi:
        raise CannotWork(
            f"label_dpi {dpi} is not the printer's resolution ({printer.dpi} dpi): labels "
            f"would print at {dpi / printer.dpi:.0%} of their size — leave label_dpi out "
            "(it is taken from the printer)"
        )
    return size, dpi


def check_broker(url: str, *, client_id: str, timeout: float) -> Finding:
    """Try to connect to the broker; a session that the broker forgets at once."""
    from sync.session import MqttSession

    session = MqttSession(client_id=client_id, url=url, session_expiry=0)
    try:
        session.start()
        connected = session.wait_connected(timeout)
        reason = session.state.reason
    finally:
        session.stop()
    if connected:
        return Finding(what="broker", ok=True, message=f"{url}: connected")
    return Finding(
        what="broker",
        ok=False,
        message=f"{url}: not reachable within {timeout:g} s ({reason})",
        fix="the bench works offline and sends its records later; check mqtt_url, the "
        "network and that the broker runs",
    )


def check_kiosk(listen: str) -> Finding:
    """Whether the packer's screen can be served on ``kiosk_listen`` (taken and let go)."""
    from edge.kiosk.listen import KioskUnavailable, bind_kiosk

    try:
        bind_kiosk(listen).close()
    except KioskUnavailable as exc:
        return Finding(what="kiosk", ok=False, message=exc.where, fix=exc.why)
    return Finding(what="kiosk", ok=True, message=f"http://{listen}/: free for the screen")


def _data_dir(path: Path) -> Finding:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".packline-check"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return Finding(
            what="data_dir",
            ok=False,
            fatal=True,
            message=f"{path}: cannot write ({exc.strerror or exc})",
            fix="set data_dir to a folder this user can write to",
        )
    return Finding(what="data_dir", ok=True, message=f"{path}: writable")


def check_station(settings: StationSettings, *, broker_timeout: float = 3.0) -> list[Finding]:
    """Every check ``packline edge check`` reports, in the order a person fixes them."""
    from drivers.printers import open_printer
    from drivers.scanners import open_scanner

    findings = [_data_dir(settings.data_dir)]
    try:
        printer = open_printer(settings.printer)
    except DriverError as exc:
        findings.append(
            Finding(what="printer", ok=False, fatal=True, message=str(exc), fix="fix the URL")
        )
        printer = None
    if printer is not None:
        with printer:
            findings += _check_printer(settings, printer)
    try:
        scanner = open_scanner(settings.scanner)
    except DriverError as exc:
        findings.append(
            Finding(what="scanner", ok=False, fatal=True, message=str(exc), fix="fix the URL")
        )
    else:
        with scanner:
            # A serial or evdev scanner is opened by the reading thread; give it a moment.
            deadline = time.monotonic() + 1.0
            while scanner.state.value == "opening" and time.monotonic() < deadline:
                scanner.read(timeout=0.1)
            state = scanner.state.value
            findings.append(
                Finding(
                    what="scanner",
                    ok=state == "ready",
                    message=f"{settings.scanner}: {state}",
                    fix=""
                    if state == "ready"
                    else "plug the scanner in (the bench waits for it; see docs/scanners.md)",
                )
            )
    findings.append(check_kiosk(settings.kiosk_listen))
    findings.append(
        check_broker(
            settings.mqtt_url,
            client_id=f"packline-check-{settings.site}-{settings.station}",
            timeout=broker_timeout,
        )
    )
    return findings


def _check_printer(settings: StationSettings, printer: Printer) -> list[Finding]:
    findings: list[Finding] = []
    try:
        size, dpi = resolve_label(settings, printer)
    except CannotWork as exc:
        return [Finding(what="label", ok=False, fatal=True, message=str(exc))]
    findings.append(
        Finding(
            what="label",
            ok=True,
            message=f"{size.key} ({size.description or 'label'}) at {dpi} dpi",
        )
    )
    try:
        status = printer.status()
    except DriverError as exc:
        findings.append(
            Finding(
                what="printer",
                ok=False,
                message=f"{settings.printer}: {exc}",
                fix="switch it on and connect it (the bench shows it as offline meanwhile)",
            )
        )
        return findings
    problem = media_problem(status, size)
    if problem:
        # The media finding says it all (the printer itself answers).
        findings.append(Finding(what="media", ok=False, message=problem))
        return findings
    findings.append(
        Finding(
            what="printer",
            ok=status.ready,
            message=f"{settings.printer}: {status.state.value}: {status.detail}",
            fix="" if status.ready else "see the printer's words above",
        )
    )
    if status.media_width_mm:
        findings.append(Finding(what="media", ok=True, message=f"{size.key} labels loaded"))
    return findings
