"""What the bench workflow is fed and what it answers: inputs, context, decision.

The state machine (:mod:`edge.bench.machine`) takes one :data:`Input` at a time with
the :class:`BenchRules` (the station's settings) and the :class:`World` the agent
looked up for it, and returns a :class:`Decision`. All are plain frozen data.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from edge.bench.state import BenchState, Feedback, PrintRequest
from sync.events import EventPayload
from sync.order import Order

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
]


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
