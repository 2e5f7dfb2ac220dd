"""What the packer should scan next, in their words: the kiosk's big line."""

from __future__ import annotations

from edge.bench.inputs import BenchRules
from edge.bench.state import BenchState

__all__ = ["next_step"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
