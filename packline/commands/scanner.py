"""``packline scanner``: listen to a scanner, list the devices that may be scanners."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from pathlib import Path

import typer

from drivers.scanners import GS, ScannerState, UnreadableScan, open_scanner
from packline.commands import command_group

__all__ = ["CANDIDATE_PATTERNS", "Candidate", "app", "find_candidates"]

app = command_group()

CANDIDATE_PATTERNS: tuple[tuple[str, str, str], ...] = (
    # (glob under the root, URL scheme, what it is)
    ("dev/input/by-id/*-event-kbd", "evdev", "USB keyboard-type scanner"),
    ("dev/serial/by-id/*", "serial", "serial scanner (stable name)"),
    ("dev/ttyACM*", "serial", "USB serial (CDC-ACM) scanner"),
    ("dev/ttyUSB*", "serial", "USB-serial adapter"),
)
"""Where scanners show up on a Pi, most stable names first."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Candidate:
    """A device that may be a scanner, with the URL to open it."""

    url: str
    kind: str


def find_candidates(*, root: Path = Path("/")) -> list[Candidate]:
    """Devices under ``root`` that look like scanners (nothing is opened)."""
    found: list[Candidate] = []
    for pattern, scheme, kind in CANDIDATE_PATTERNS:
        for path in sorted(root.glob(pattern)):
            found.append(Candidate(url=f"{scheme}://{path}", kind=kind))
    return found


@app.command("listen")
def listen(
    url: str = typer.Argument(
        ...,
        metavar="URL",
        help="Scanner URL, e.g. serial:///dev/ttyACM0?baud=9600 or evdev:///dev/input/...",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per scan: text, at_wall, source."
    ),
) -> None:
    """Print each scan as a line until Ctrl-C; state changes go to stderr."""
    # The lines below already tell the state; the library's own warnings would repeat it.
    for name in ("drivers.scanners", "drivers.fakes"):
        logging.getLogger(name).setLevel(logging.ERROR)

    def on_state(state: ScannerState, detail: str) -> None:
        print(f"scanner {state.value}: {detail}", file=sys.stderr, flush=True)

    def on_unreadable(item: UnreadableScan) -> None:
        print(f"unreadable scan ({item.reason}): {item.raw}", file=sys.stderr, flush=True)

    scanner = open_scanner(url, on_state=on_state, on_unreadable=on_unreadable)
    try:
        while True:
            scan = scanner.read(timeout=1.0)
            if scan is None:
                continue
            if as_json:
                record = {"text": scan.text, "at_wall": scan.at_wall, "source": scan.source}
                line = json.dumps(record, ensure_ascii=False)
            else:
                line = scan.text.replace(GS, "<GS>")
            print(line, flush=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how listening ends
    finally:
        scanner.close()


@app.command("list")
def list_devices(
    root: Path = typer.Option(Path("/"), "--root", hidden=True, help="Look under this root."),
) -> None:
    """Show devices that may be scanners, with the URL to listen to each."""
    candidates = find_candidates(root=root)
    if not candidates:
        print("no scanner candidates found (no by-id keyboards, ttyACM or ttyUSB)", file=sys.stderr)
        return
    width = max(len(c.url) for c in candidates)
    for c in candidates:
        print(f"{c.url:<{width}}  {c.kind}")
