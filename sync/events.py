"""The catalogue of event types: what a station records, what central decodes.

Every fact a station records is an :class:`~sync.messages.Event` whose ``type`` names
an entry here and whose ``payload`` is that entry's model, dumped to JSON. Both ends
import this module: the station validates a payload before recording it (a bad
payload is a programming error and records nothing), central decodes it with the same
model (a payload that does not decode is stored, not projected). A type that is not
in the catalogue is stored by central as it came, never rejected: a newer station may
know types this central does not.

Adding an event type is a model and a decorator::

    @catalogued("parcel.weighed", version=1)
    class ParcelWeighed(EventPayload):
        \"\"\"A parcel was weighed on the bench scale.\"\"\"

        order_no: str = Field(min_length=1, description="the order")
        grams: int = Field(ge=0, description="what the scale read")

then ``python -m sync.events > docs/events.md``. A payload may gain an optional field
under the same version (readers ignore fields they do not know); removing, renaming or
retyping a field, or adding a required one, is a new version.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = [
    "CATALOGUE",
    "AlarmAcknowledged",
    "BadEventPayload",
    "DeviceState",
    "EventPayload",
    "ItemUndone",
    "ItemVerified",
    "LabelPrinted",
    "LabelVoided",
    "OperatorLogin",
    "OperatorLogout",
    "OrderPacked",
    "OrderStarted",
    "PackingAbandoned",
    "ParcelItem",
    "PiiPurged",
    "ProblemReported",
    "QcChecked",
    "ReturnInspected",
    "ScanRejected",
    "ShipmentShipped",
    "UnknownEventType",
    "catalogued",
    "decode_payload",
    "markdown",
    "model_for",
    "validate_payload",
]


class UnknownEventType(LookupError):
    """A type the catalogue does not list; ``str()`` names it."""


class BadEventPayload(ValueError):
    """A payload that does not fit its type's model; ``str()`` says which field and why."""


class EventPayload(BaseModel):
    """Base of every catalogued payload: frozen, strictly typed, JSON-shaped.

    ``TYPE`` and ``VERSION`` are set by :func:`catalogued`. Unknown fields are ignored
    when decoding (a newer station may add an optional one) but refused when a station
    records a payload (see :func:`validate_payload`).
    """

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 0


P = TypeVar("P", bound=EventPayload)

#: Event type → its payload model, in the order the types were added.
CATALOGUE: dict[str, type[EventPayload]] = {}


def catalogued(type_name: str, *, version: int) -> Callable[[type[P]], type[P]]:
    """Register a payload model as event type ``type_name`` at ``version`` (≥ 1)."""
    if version < 1:
        raise ValueError(f"event type {type_name!r}: version must be at least 1")

    def register(model: type[P]) -> type[P]:
        if type_name in CATALOGUE:
            raise ValueError(f"event type {type_name!r} is catalogued twice")
        model.TYPE = type_name
        model.VERSION = version
        CATALOGUE[type_name] = model
        return model

    return register


# -- the catalogue ---------------------------------------------------------------------


class ParcelItem(BaseModel):
    """An item count inside a payload: which SKU, how many."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    sku: str = Field(min_length=1, description="the SKU")
    qty: int = Field(ge=1, description="how many")


Operator = Field(default=None, description="who was logged in at the bench (null when nobody)")


@catalogued("shipment.shipped", version=1)
class ShipmentShipped(EventPayload):
    """A parcel of an order was labelled and left the bench (B5); one event per parcel."""

    order_no: str = Field(min_length=1, description="the order shipped")
    tracking_no: str = Field(description="the carrier's tracking number on this parcel's waybill")
    carrier: str = Field(description="the carrier")
    service: str = Field(default="", description="the carrier's service, if the order names one")
    parcel_no: int = Field(ge=1, description="this parcel's number, from 1")
    parcel_count: int = Field(ge=1, description="how many parcels the order ships in")
    operator: str = Field(
        description="who packed it: the logged-in packer, else the station's `operator` "
        "setting, else the station's name"
    )
    print_job_id: str = Field(description="the waybill's print job")
    print_verified: bool = Field(
        description="true when the printer confirmed the label, false when only the bytes "
        "were written"
    )
    confirm: str = Field(
        default="auto",
        description="how the parcel was confirmed: `auto` (when its waybill printed) or "
        "`scan` (the packer scanned the waybill on the box)",
    )
    contents: list[ParcelItem] = Field(
        default_factory=list, description="what is in this parcel: a list of `{sku, qty}`"
    )


@catalogued("label.printed", version=1)
class LabelPrinted(EventPayload):
    """A label came out of the bench's printer (B3)."""

    order_no: str = Field(min_length=1, description="the order the label belongs to")
    job_id: str = Field(min_length=1, description="the print job; a retry reuses it")
    kind: str = Field(description="which document: `waybill`, `packing_list`, `product`, `return`")
    verified: bool = Field(description="true when the printer confirmed it")
    duplicate: bool = Field(
        default=False,
        description="true when the printer had already printed this job (a retry after a "
        "crash): no second label came out",
    )
    parcel_no: int | None = Field(default=None, description="the parcel of a waybill, from 1")
    reprint: bool = Field(
        default=False,
        description="true for a deliberate new print of a label printed before (B6)",
    )
    reason: str = Field(default="", description="why it was reprinted, in the packer's words")
    operator: str | None = Operator


@catalogued("scan.rejected", version=1)
class ScanRejected(EventPayload):
    """The bench refused a scan, with the reason the packer was shown (B1, B2, B4)."""

    text: str = Field(description="what was scanned")
    reason: str = Field(description="the words the packer saw")
    order_no: str | None = Field(
        default=None, description="the order, or null when the code matched none"
    )
    code: str = Field(
        default="",
        description="why, as a stable word: `unknown_code`, `not_packable`, "
        "`already_shipped`, `wrong_item`, `extra_item`, `over_quantity`, `no_operator`, "
        "`alarm_pending`, `printer_not_ready`, `label_does_not_fit`, `voided_label`, "
        "`qc_pending`, `bad_command`, ... (docs/station.md)",
    )
    operator: str | None = Operator


@catalogued("operator.login", version=1)
class OperatorLogin(EventPayload):
    """A packer scanned their badge and is now logged in at the bench."""

    operator: str = Field(min_length=1, description="the badge's operator id")


@catalogued("operator.logout", version=1)
class OperatorLogout(EventPayload):
    """The packer logged out (``CMD-LOGOUT``, or another badge was scanned)."""

    operator: str = Field(min_length=1, description="who logged out")


@catalogued("order.started", version=1)
class OrderStarted(EventPayload):
    """The packer scanned an order that passed the audit (B1); packing begins."""

    order_no: str = Field(min_length=1, description="the order")
    operator: str | None = Operator
    revision: int = Field(default=1, ge=1, description="the order's revision being packed")
    parcel_count: int = Field(default=1, ge=1, description="how many parcels it ships in")
    qc: bool = Field(default=False, description="true when the order was chosen for QC (B7)")
    resumed: bool = Field(
        default=False,
        description="true when parcels of it had already shipped (packing resumes)",
    )


@catalogued("item.verified", version=1)
class ItemVerified(EventPayload):
    """Items were checked against an order line (B4): scanned, or forced by a supervisor."""

    order_no: str = Field(min_length=1, description="the order")
    parcel_no: int = Field(ge=1, description="the parcel they were packed in")
    sku: str = Field(min_length=1, description="the line's SKU")
    barcode: str = Field(description="what was scanned (normalised), empty when forced")
    qty: int = Field(ge=1, description="how many items this scan counted")
    operator: str | None = Operator
    forced_by: str | None = Field(
        default=None, description="the supervisor who force-verified them, else null"
    )
    reason: str = Field(default="", description="why they were forced, else empty")


@catalogued("item.undone", version=1)
class ItemUndone(EventPayload):
    """An item count was taken back (``CMD-UNDO``, or a failed QC check)."""

    order_no: str = Field(min_length=1, description="the order")
    parcel_no: int = Field(ge=1, description="the parcel it had been counted in")
    sku: str = Field(min_length=1, description="the line's SKU")
    qty: int = Field(ge=1, description="how many items were taken back")
    operator: str | None = Operator
    reason: str = Field(default="", description="why, in the packer's words")


@catalogued("alarm.acknowledged", version=1)
class AlarmAcknowledged(EventPayload):
    """The packer acknowledged a blocking alarm with ``CMD-OK`` (B4)."""

    order_no: str | None = Field(default=None, description="the order being packed")
    code: str = Field(description="the alarm's code (`wrong_item`, `over_quantity`, ...)")
    operator: str | None = Operator


@catalogued("label.voided", version=1)
class LabelVoided(EventPayload):
    """A printed waybill was voided (B6); its parcel needs a new label to ship."""

    order_no: str = Field(min_length=1, description="the order")
    job_id: str = Field(min_length=1, description="the voided label's print job")
    parcel_no: int = Field(ge=1, description="the parcel it was for")
    tracking_no: str = Field(description="the tracking number on it")
    reason: str = Field(description="why, in the packer's words")
    operator: str | None = Operator


@catalogued("order.packed", version=1)
class OrderPacked(EventPayload):
    """Every item of the order was verified (B4): the pack deadline is met."""

    order_no: str = Field(min_length=1, description="the order")
    operator: str | None = Operator
    parcel_count: int = Field(ge=1, description="how many parcels it ships in")


@catalogued("packing.abandoned", version=1)
class PackingAbandoned(EventPayload):
    """The packer stopped packing an order (``CMD-CANCEL``); it can be scanned again."""

    order_no: str = Field(min_length=1, description="the order")
    operator: str | None = Operator
    reason: str = Field(description="why, in the packer's words")


@catalogued("qc.checked", version=1)
class QcChecked(EventPayload):
    """A second person checked an order chosen for QC (B7)."""

    order_no: str = Field(min_length=1, description="the order")
    result: str = Field(description="`pass` or `fail`")
    by: str = Field(min_length=1, description="the checker's badge id (not the packer)")
    note: str = Field(default="", description="what was found")
    operator: str | None = Operator


@catalogued("return.inspected", version=1)
class ReturnInspected(EventPayload):
    """A returned parcel was inspected at the bench (B8)."""

    order_no: str = Field(min_length=1, description="the order it was shipped for")
    tracking_no: str = Field(description="the returned parcel's tracking number, if scanned")
    outcome: str = Field(description="`restock`, `damaged` or `wrong_item`")
    items: list[ParcelItem] = Field(description="what came back: a list of `{sku, qty}`")
    operator: str | None = Operator


@catalogued("problem.reported", version=1)
class ProblemReported(EventPayload):
    """The packer reported a problem with an order (``CMD-EXCEPTION-...``)."""

    order_no: str = Field(min_length=1, description="the order")
    problem: str = Field(description="`damaged` or `stock_out`")
    note: str = Field(default="", description="what the packer saw")
    operator: str | None = Operator


@catalogued("device.state", version=1)
class DeviceState(EventPayload):
    """A bench device changed state (B2): printer offline, out of labels, scanner gone..."""

    device: str = Field(description="`printer` or `scanner`")
    state: str = Field(description="the new state in words (`ready`, `no media`, `gone`, ...)")
    detail: str = Field(default="", description="the device's own words")
    model: str = Field(default="", description="the device's model, when known")
    serial: str = Field(default="", description="the device's serial number or address")


@catalogued("pii.purged", version=1)
class PiiPurged(EventPayload):
    """Recipient name, phone and address were erased from shipped orders at the bench (C1)."""

    orders: int = Field(ge=1, description="how many orders were purged")


# -- validating and decoding -----------------------------------------------------------


def model_for(type_name: str) -> type[EventPayload] | None:
    """The payload model of ``type_name``, or None when it is not catalogued."""
    return CATALOGUE.get(type_name)


def _explain(type_name: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    return f"{type_name}: {where}: {first['msg']}"


def validate_payload(type_name: str, payload: Mapping[str, Any]) -> EventPayload:
    """The model of a payload a station is about to record; strict.

    Raises :class:`UnknownEventType` for a type not in the catalogue and
    :class:`BadEventPayload` for a payload that does not fit, including a field the
    model does not have (at the source, an unknown field is a typo).
    """
    model = model_for(type_name)
    if model is None:
        raise UnknownEventType(f"event type {type_name!r} is not in the catalogue (sync/events.py)")
    unknown = sorted(set(payload) - set(model.model_fields))
    if unknown:
        raise BadEventPayload(f"{type_name}: unknown field {', '.join(unknown)}")
    try:
        return model.model_validate(dict(payload))
    except ValidationError as exc:
        raise BadEventPayload(_explain(type_name, exc)) from None


def decode_payload(type_name: str, payload: object, *, version: int = 1) -> EventPayload | None:
    """Decode a received payload with its type's model (what central does).

    Returns None for a type not in the catalogue (stored as it came, not an error).
    Raises :class:`BadEventPayload` when the payload does not fit the model, or was
    recorded under a version of the type this catalogue does not have.
    """
    model = model_for(type_name)
    if model is None:
        return None
    if version != model.VERSION:
        raise BadEventPayload(
            f"{type_name}: version {version} is not known here (this end has "
            f"version {model.VERSION})"
        )
    if not isinstance(payload, Mapping):
        raise BadEventPayload(f"{type_name}: payload is not an object")
    try:
        return model.model_validate(dict(payload))
    except ValidationError as exc:
        raise BadEventPayload(_explain(type_name, exc)) from None


# -- docs/events.md --------------------------------------------------------------------

_NAMES: dict[object, str] = {str: "text", int: "integer", float: "number", bool: "true/false"}


def _type_words(annotation: object) -> str:
    args = typing.get_args(annotation)
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        words = [_type_words(a) for a in args if a is not type(None)]
        nullable = " or null" if type(None) in args else ""
        return " or ".join(words) + nullable
    if typing.get_origin(annotation) is list and args:
        return f"list of {_type_words(args[0])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "{" + ", ".join(annotation.model_fields) + "}"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(info: FieldInfo) -> str:
    words = []
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(meta, attr, None)
            if value is not None:
                words.append(f"{sign} {value}")
        if getattr(meta, "min_length", None) == 1:
            words.append("not empty")
    return ", ".join(words)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return "default `[]`"
    value = info.default if info.default is not PydanticUndefined else None
    shown = {None: "null", True: "true", False: "false"}.get(value, repr(value))
    return f"default `{shown}`".replace("'", '"')


def markdown() -> str:
    """``docs/events.md``, generated from :data:`CATALOGUE`."""
    lines = [
        "# Event types",
        "",
        "<!-- Generated from sync/events.py by `python -m sync.events > docs/events.md`;",
        "     tests/sync/test_events.py fails when this file is not current. -->",
        "",
        "Every fact a station records is an event: the envelope (`event_id`, `station`,",
        "`seq`, `type`, `version`, `at_wall`, `at_mono`, `boot_id`; see",
        "[station.md](station.md#the-store)) and a JSON `payload` whose fields depend on",
        "`type`. The catalogue is `sync/events.py`: the station refuses to record a payload",
        "that does not fit its type (a programming error, nothing is recorded); central",
        "decodes it with the same model, stores a payload that does not fit without",
        "projecting it (one warning), and stores a type it does not know as it came.",
        "",
        "A payload may gain an optional field under the same version; removing, renaming or",
        "retyping a field, or adding a required one, makes a new version.",
        "",
        "| type | version | what |",
        "|---|---|---|",
    ]
    for name, model in CATALOGUE.items():
        lines.append(f"| `{name}` | {model.VERSION} | {_summary(model)} |")
    for name, model in CATALOGUE.items():
        lines += [
            "",
            f"## `{name}` (version {model.VERSION})",
            "",
            _summary(model),
            "",
            "| field | type | required | meaning |",
            "|---|---|---|---|",
        ]
        for field, info in model.model_fields.items():
            kind = _type_words(info.annotation)
            bounds = _bounds(info)
            if bounds:
                kind = f"{kind}, {bounds}"
            lines.append(f"| `{field}` | {kind} | {_default(info)} | {info.description or ''} |")
    return "\n".join(lines) + "\n"


def _summary(model: type[EventPayload]) -> str:
    return (model.__doc__ or "").strip().splitlines()[0]


if __name__ == "__main__":
    print(markdown(), end="")
