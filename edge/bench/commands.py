"""The command barcodes a packer scans, by name (``packline label commands`` prints them).

A command is a Code128 barcode of its name, ``CMD-...``; quantities are
``CMD-QTY-n`` (n from 1 to 999). The table is data: the state machine dispatches on
:class:`Cmd`, the sheet and docs/station.md list :data:`COMMANDS` with their words.
"""

from __future__ import annotations

import dataclasses
import enum
import re

from sync.order import MAX_QTY

__all__ = [
    "COMMANDS",
    "PREFIX",
    "QTY_ON_SHEET",
    "BadCommand",
    "Cmd",
    "Command",
    "parse_command",
]

PREFIX = "CMD-"
"""Every command barcode starts with this."""


class Cmd(enum.StrEnum):
    """A command barcode's text (``CMD-QTY`` stands for every ``CMD-QTY-n``)."""

    OK = "CMD-OK"
    UNDO = "CMD-UNDO"
    CANCEL = "CMD-CANCEL"
    LOGOUT = "CMD-LOGOUT"
    NEXT_PARCEL = "CMD-NEXT-PARCEL"
    REPRINT = "CMD-REPRINT"
    VOID = "CMD-VOID"
    FORCE = "CMD-FORCE"
    QTY = "CMD-QTY"
    QC_PASS = "CMD-QC-PASS"
    QC_FAIL = "CMD-QC-FAIL"
    RETURN = "CMD-RETURN"
    RESTOCK = "CMD-RESTOCK"
    DAMAGED = "CMD-DAMAGED"
    WRONG_ITEM = "CMD-WRONG-ITEM"
    EXCEPTION_DAMAGED = "CMD-EXCEPTION-DAMAGED"
    EXCEPTION_STOCKOUT = "CMD-EXCEPTION-STOCKOUT"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Command:
    """A scanned command: which one, and the quantity of ``CMD-QTY-n``."""

    cmd: Cmd
    qty: int = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class BadCommand:
    """A scan that starts like a command but is none; ``reason`` says why."""

    text: str
    reason: str


#: Every command with its name on the sheet and what it does, in the packer's words.
COMMANDS: tuple[tuple[Cmd, str, str], ...] = (
    (Cmd.OK, "OK", "acknowledge an alarm (after taking the wrong item out)"),
    (Cmd.UNDO, "Undo", "take back the last item scan (or stop a started command)"),
    (Cmd.CANCEL, "Cancel order", "stop packing the order in progress; it is recorded"),
    (Cmd.NEXT_PARCEL, "Next parcel", "close this parcel (its label prints), start the next"),
    (Cmd.REPRINT, "Reprint", "print the last label again (recorded), or retry a failed one"),
    (Cmd.VOID, "Void label", "then scan a waybill: it is void, its parcel needs a new one"),
    (Cmd.FORCE, "Force verify", "a supervisor's badge, then the line's code, counts a line"),
    (Cmd.QC_PASS, "QC pass", "the second person found the order right"),
    (Cmd.QC_FAIL, "QC fail", "the second person found a fault: the order is packed again"),
    (Cmd.RETURN, "Return", "inspect a returned parcel: scan it, then what came back"),
    (Cmd.RESTOCK, "Restock", "the returned items go back to stock"),
    (Cmd.DAMAGED, "Damaged", "the returned items are damaged"),
    (Cmd.WRONG_ITEM, "Wrong item", "the customer returned something else"),
    (Cmd.EXCEPTION_DAMAGED, "Report damaged", "report the order's goods damaged to central"),
    (Cmd.EXCEPTION_STOCKOUT, "Report stock-out", "report an item of the order out of stock"),
    (Cmd.LOGOUT, "Log out", "end your session at this bench"),
)

#: The quantities printed on the command sheet (any 1 to 999 is understood).
QTY_ON_SHEET: tuple[int, ...] = (2, 3, 4, 5, 6, 8, 10, 12, 20, 24, 50, 100)

_QTY = re.compile(r"\ACMD-QTY-(\d{1,4})\Z")
_BY_TEXT = {cmd.value: cmd for cmd in Cmd if cmd is not Cmd.QTY}


def parse_command(text: str) -> Command | BadCommand | None:
    """The command ``text`` names; :class:`BadCommand` for ``CMD-`` junk; None otherwise."""
    upper = text.strip().upper()
    if not upper.startswith(PREFIX):
        return None
    found = _BY_TEXT.get(upper)
    if found is not None:
        return Command(cmd=found)
    qty = _QTY.match(upper)
    if qty:
        n = int(qty.group(1))
        if 1 <= n <= MAX_QTY:
            return Command(cmd=Cmd.QTY, qty=n)
        return BadCommand(text=text, reason=f"a quantity must be 1 to {MAX_QTY}, not {n}")
    return BadCommand(text=text, reason=f"{text} is not a command this bench knows")
