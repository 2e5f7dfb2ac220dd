"""The bench's state: everything the workflow must remember, durable as JSON.

The agent stores :class:`BenchState` in the station store in the same transaction as
the events each step records, so after a crash or power cut the packer continues
where they were: logged in, the order in progress with every item counted, the parcel
being packed, a label waiting to print. The models are plain data; the rules that
change them are :mod:`edge.bench.machine`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sync.order import Order, ReturnInfo

__all__ = [
    "STATE_VERSION",
    "Alarm",
    "BenchState",
    "Feedback",
    "LabelState",
    "LastLabel",
    "LineProgress",
    "OrderInProgress",
    "Outcome",
    "ParcelProgress",
    "Pending",
    "PrintKind",
    "PrintRequest",
    "ReturnInProgress",
    "VerifyStep",
]

STATE_VERSION = 1
"""Bumped when a stored state can no longer be read by this code."""

Outcome = Literal["ok", "done", "refused", "alarm", "info"]
"""How a step went for the packer: accepted, finished, refused, blocking alarm, a note."""

PrintKind = Literal["waybill", "packing_list", "product", "return"]
"""Which document a print job is (the ``kind`` of ``label.printed``)."""

LabelState = Literal["none", "waiting_qc", "printing", "printed", "failed", "voided"]
"""Where a parcel's waybill is: not yet due, held for QC, printing, printed, failed, void."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


class Feedback(_Model):
    """What the packer is told about one step: outcome, words, and a stable code."""

    outcome: Outcome
    message: str
    code: str = ""
    text: str = ""
    at: float = 0.0

    @property
    def ok(self) -> bool:
        """True unless the step was refused or raised an alarm."""
        return self.outcome not in ("refused", "alarm")


class Alarm(_Model):
    """A blocking alarm (B4): every scan but ``CMD-OK`` repeats it."""

    code: str
    message: str
    order_no: str | None = None


class LineProgress(_Model):
    """One order line at the bench: how many are verified of how many."""

    sku: str
    code: str
    name: str = ""
    qty: int = Field(ge=1)
    verified: int = Field(default=0, ge=0)

    @property
    def open(self) -> int:
        """How many are still to verify."""
        return self.qty - self.verified


class ParcelProgress(_Model):
    """One parcel: what is in it, its waybill, whether it shipped."""

    parcel_no: int = Field(ge=1)
    contents: dict[str, int] = Field(default_factory=dict)
    closed: bool = False
    label: LabelState = "none"
    label_job: str = ""
    label_revision: int = 0
    label_verified: bool = False
    label_error: str = ""
    shipped: bool = False

    @property
    def items(self) -> int:
        """How many items are in it."""
        return sum(self.contents.values())


class VerifyStep(_Model):
    """One counted scan, so ``CMD-UNDO`` can take it back."""

    line: int
    parcel_no: int
    qty: int
    forced_by: str | None = None


class OrderInProgress(_Model):
    """The order being packed: its snapshot, line and parcel progress, QC."""

    order: Order
    lines: list[LineProgress]
    parcels: list[ParcelProgress]
    current: int = 1
    history: list[VerifyStep] = Field(default_factory=list)
    jobs: list[str] = Field(default_factory=list)
    qc_required: bool = False
    qc_passed: bool = False
    qc_checker: str | None = None
    packed: bool = False
    blocked: str = ""

    @property
    def order_no(self) -> str:
        """The order's number."""
        return self.order.order_no

    @property
    def verified_all(self) -> bool:
        """Every item of every line is verified."""
        return all(line.open == 0 for line in self.lines)

    @property
    def items_open(self) -> int:
        """Items still to verify, over all lines."""
        return sum(line.open for line in self.lines)

    def parcel(self, parcel_no: int) -> ParcelProgress:
        """Parcel ``parcel_no`` (from 1)."""
        return self.parcels[parcel_no - 1]

    @property
    def qc_pending(self) -> bool:
        """The order needs its second check before any parcel may ship."""
        return self.qc_required and not self.qc_passed


class Pending(_Model):
    """A command waiting for its next scan: a quantity, a force, a void."""

    kind: Literal["qty", "force", "void"]
    qty: int = 0
    supervisor: str | None = None


class ReturnInProgress(_Model):
    """A returned parcel being inspected (B8)."""

    order: Order | None = None
    tracking_no: str = ""
    items: dict[str, int] = Field(default_factory=dict)
    scanned: list[str] = Field(default_factory=list)


class PrintRequest(_Model):
    """A label the agent must print: decided and recorded before it is printed."""

    job_id: str
    kind: PrintKind
    order: Order
    parcel_no: int | None = None
    reprint: bool = False
    reason: str = ""
    qc: bool = False
    returned: ReturnInfo | None = None
    error: str = ""


class LastLabel(_Model):
    """The last label printed at this bench, which ``CMD-REPRINT`` prints again."""

    job_id: str
    kind: PrintKind
    order_no: str
    parcel_no: int | None = None
    returned: ReturnInfo | None = None


class BenchState(_Model):
    """The whole durable state of one bench."""

    version: int = STATE_VERSION
    operator: str | None = None
    order: OrderInProgress | None = None
    alarm: Alarm | None = None
    pending: Pending | None = None
    returning: ReturnInProgress | None = None
    prints: list[PrintRequest] = Field(default_factory=list)
    failed_prints: list[PrintRequest] = Field(default_factory=list)
    last_label: LastLabel | None = None
    last_order_no: str | None = None
    last_feedback: Feedback | None = None
    restarted: bool = False
    return_seq: int = 0
