"""The watch's rules as data: deadlines, routing, escalation policies, station checks.

They are read from ``central.toml`` (``[deadlines]``, ``[routing]``, ``[escalation]``,
``offline_after``, ``labels_low``, ``stalled_after``; see docs/central.md) and handed to
the watch as one :class:`WatchRules`. Every table has defaults, and a file names only
what it changes: ``[escalation.general] repeat_every = "10m"`` keeps the levels.

Durations are written ``"24h"``, ``"15m"``, ``"1h30m"``, ``"2d"`` or ``"90s"``; a bare
number is seconds (hours for ``stalled_after``).
"""

from __future__ import annotations

import datetime as dt
import enum
import fnmatch
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

__all__ = [
    "CAUSE_CLASSES",
    "DEFAULT_POLICIES",
    "DEFAULT_ROUTES",
    "DEFAULT_TICKET_ROUTES",
    "DeadlineRule",
    "DeadlineRules",
    "EscalationLevel",
    "EscalationPolicy",
    "ExceptionType",
    "Hours",
    "Policies",
    "Route",
    "Routing",
    "Seconds",
    "Severity",
    "TicketRoutes",
    "WatchRules",
    "allowed_to_ack",
    "parse_duration",
    "policy_table",
    "routing_table",
    "topic_word",
]

_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: object, *, number_unit: str = "s") -> dt.timedelta:
    """``"6h"``, ``"1h30m"``, ``"-2h"``, ``"90s"``, ``"2d"`` or a number of ``number_unit``.

    Raises ``ValueError`` with the accepted forms for anything else.
    """
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as 15m, 6h or 1h30m, got {value!r}")
    if isinstance(value, int | float):
        return dt.timedelta(seconds=float(value) * _UNITS[number_unit])
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        parts = _PART.findall(body)
        if body and "".join(n + u for n, u in parts) == body:
            return dt.timedelta(seconds=sign * sum(float(n) * _UNITS[u] for n, u in parts))
    raise ValueError(f"must be a duration such as 15m, 6h or 1h30m, got {value!r}")


def _seconds(value: object) -> dt.timedelta:
    return parse_duration(value, number_unit="s")


def _hours(value: object) -> dt.timedelta:
    return parse_duration(value, number_unit="h")


def _words(delta: dt.timedelta) -> str:
    """A duration as the config file writes it: ``1h30m``, ``-2h``, ``0s``."""
    total = int(delta.total_seconds())
    sign, total = ("-", -total) if total < 0 else ("", total)
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            out += f"{total // size}{unit}"
            total %= size
    return sign + (out or "0s")


_AS_WORDS = PlainSerializer(_words, when_used="json")
#: A duration whose bare numbers are seconds (``tick_every = 15``).
Seconds = Annotated[dt.timedelta, BeforeValidator(_seconds), _AS_WORDS]
#: A duration whose bare numbers are hours (``stalled_after = 48``).
Hours = Annotated[dt.timedelta, BeforeValidator(_hours), _AS_WORDS]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")


def topic_word(value: str) -> str:
    """``value`` if it can be a department (a level of the alert topic: lower-case
    letters, digits, ``-``, ``_``); ``ValueError`` otherwise."""
    if not _NAME.match(value):
        raise ValueError(
            f"must be lower-case letters, digits, '-' or '_' (it is part of an MQTT topic), "
            f"got {value!r}"
        )
    return value


Dept = Annotated[str, BeforeValidator(lambda v: topic_word(str(v).strip()))]


class Severity(enum.StrEnum):
    """How bad an exception is (D4); ``major`` reaches management within the hour."""

    GENERAL = "general"
    MAJOR = "major"


class ExceptionType(enum.StrEnum):
    """The kinds of shipping exception (D3)."""

    SHIPPING_DELAY = "shipping_delay"
    LOST_PARCEL = "lost_parcel"
    WRONG_ITEM = "wrong_item"
    MISSING_ITEM = "missing_item"
    DAMAGED = "damaged"
    ADDRESS_CHANGE = "address_change"
    EQUIPMENT_FAULT = "equipment_fault"
    STOCK_OUT = "stock_out"
    SYSTEM_FAILURE = "system_failure"
    LOGISTICS_STALLED = "logistics_stalled"
    DOUBLE_SHIPMENT = "double_shipment"


#: Cause class → whether the cause lies inside the warehouse or outside it (D4).
CAUSE_CLASSES: Mapping[str, Literal["internal", "external"]] = {
    "stock_out": "internal",
    "system_failure": "internal",
    "packing_error": "internal",
    "equipment_fault": "internal",
    "process_delay": "internal",
    "carrier_delay": "external",
    "force_majeure": "external",
    "customer_request": "external",
    "platform_rule": "external",
    "supplier": "external",
}


class _Rule(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class Route(_Rule):
    """Where an exception type goes by default: department, severity, cause class,
    and the escalation policy (by default the one named after the severity)."""

    dept: Dept
    severity: Severity = Severity.GENERAL
    cause_class: str = "process_delay"
    policy: str | None = None

    @field_validator("cause_class")
    @classmethod
    def _known_cause(cls, value: str) -> str:
        if value not in CAUSE_CLASSES:
            raise ValueError(f"must be one of {', '.join(CAUSE_CLASSES)}, got {value!r}")
        return value

    @property
    def policy_name(self) -> str:
        """The escalation policy that applies."""
        return self.policy or str(self.severity)


def _route(dept: str, severity: str, cause: str) -> dict[str, str]:
    return {"dept": dept, "severity": severity, "cause_class": cause}


#: The routing table an empty ``[routing]`` gives.
DEFAULT_ROUTES: Mapping[str, Mapping[str, str]] = {
    "shipping_delay": _route("warehouse", "general", "process_delay"),
    "lost_parcel": _route("logistics", "major", "carrier_delay"),
    "wrong_item": _route("warehouse", "general", "packing_error"),
    "missing_item": _route("warehouse", "general", "packing_error"),
    "damaged": _route("warehouse", "general", "packing_error"),
    "address_change": _route("customer_service", "general", "customer_request"),
    "equipment_fault": _route("operations", "general", "equipment_fault"),
    "stock_out": _route("warehouse", "general", "stock_out"),
    "system_failure": _route("operations", "major", "system_failure"),
    "logistics_stalled": _route("logistics", "general", "carrier_delay"),
    "double_shipment": _route("warehouse", "major", "system_failure"),
}


class EscalationLevel(_Rule):
    """One step of an escalation chain: who hears, and how long after the step before.

    ``to`` is the audience's level of the alert topic (``packline/v1/{site}/alerts/
    {to}/{severity}``); ``{dept}`` in it is the responsible department.
    """

    name: str = Field(min_length=1, max_length=64)
    to: str = Field(min_length=1, max_length=64)
    after: Seconds = dt.timedelta(0)

    @field_validator("to")
    @classmethod
    def _audience(cls, value: str) -> str:
        topic_word(value.replace("{dept}", "dept"))
        return value

    def audience(self, dept: str) -> str:
        """The topic level this step's alerts go to, for ``dept``."""
        return self.to.replace("{dept}", dept)


class EscalationPolicy(_Rule):
    """Levels, repeats and who may acknowledge (A1, D5).

    The first level hears when the alarm opens; each further level ``after`` the one
    before while no plan is posted (for a condition: while nobody acknowledged). An
    unacknowledged alarm repeats every ``repeat_every`` at its current level (0: never).
    ``reach_top_within`` sends it to the top level by then whatever happens (major
    exceptions reach management within the hour). ``acknowledgers`` are the people
    (shell patterns, ``*`` for anyone) whose acknowledgement the API and MQTT accept.
    """

    levels: list[EscalationLevel] = Field(min_length=1, max_length=10)
    repeat_every: Seconds = dt.timedelta(minutes=15)
    acknowledgers: list[str] = Field(default_factory=lambda: ["*"])
    reach_top_within: Seconds | None = None

    @field_validator("repeat_every", "reach_top_within")
    @classmethod
    def _not_negative(cls, value: dt.timedelta | None) -> dt.timedelta | None:
        if value is not None and value < dt.timedelta(0):
            raise ValueError("must not be negative")
        return value

    @model_validator(mode="after")
    def _levels_move_on(self) -> EscalationPolicy:
        for level in self.levels[1:]:
            if level.after <= dt.timedelta(0):
                raise ValueError(f"level {level.name!r}: after must be more than 0")
        return self


_LEVELS = [
    {"name": "supervisor", "to": "{dept}"},
    {"name": "department head", "to": "{dept}-head", "after": "1h"},
    {"name": "management", "to": "management", "after": "1h"},
]

#: The policies an empty ``[escalation]`` gives, by name.
DEFAULT_POLICIES: Mapping[str, Mapping[str, Any]] = {
    "general": {"levels": _LEVELS, "repeat_every": "15m", "acknowledgers": ["*"]},
    # After-sales tickets (D7): the first response is due within 10 minutes; a ticket
    # nobody answered by then goes to the department head.
    "ticket": {
        "levels": [
            {"name": "supervisor", "to": "{dept}"},
            {"name": "department head", "to": "{dept}-head", "after": "10m"},
            {"name": "management", "to": "management", "after": "1h"},
        ],
        "repeat_every": "10m",
        "acknowledgers": ["*"],
    },
    "major": {
        "levels": _LEVELS,
        "repeat_every": "15m",
        "acknowledgers": ["*"],
        "reach_top_within": "1h",
    },
}


#: Ticket category → the department it is routed to (``[tickets]`` changes them).
DEFAULT_TICKET_ROUTES: Mapping[str, str] = {
    "complaint": "customer_service",
    "return": "customer_service",
    "exchange": "customer_service",
    "reissue": "warehouse",
}


def _ticket_routes(value: object) -> object:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        return value
    for name in value:
        if name not in DEFAULT_TICKET_ROUTES:
            raise ValueError(
                f"unknown ticket category {name!r}; the categories are "
                f"{', '.join(DEFAULT_TICKET_ROUTES)}"
            )
    return {**DEFAULT_TICKET_ROUTES, **value}


#: ``[tickets]``: ticket category → department, the defaults under what a file gives.
TicketRoutes = Annotated[dict[str, Dept], BeforeValidator(_ticket_routes)]


def _merge_defaults(
    defaults: Mapping[str, Mapping[str, Any]], fallback: str
) -> Callable[[object], object]:
    """A before-validator: each entry of a table given in the file is laid over the
    default entry of the same name (or ``fallback``'s), field by field."""

    def merge(value: object) -> object:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            return value
        merged: dict[str, Any] = {k: dict(v) for k, v in defaults.items()}
        for name, given in value.items():
            if isinstance(given, BaseModel):
                given = given.model_dump()
            if not isinstance(given, Mapping):
                merged[name] = given  # let the model say what is wrong
                continue
            base = merged.get(name, dict(defaults.get(fallback, {})))
            merged[name] = {**base, **given}
        return merged

    return merge


def _known_types(value: object) -> object:
    if isinstance(value, Mapping):
        known = {t.value for t in ExceptionType}
        for name in value:
            if name not in known:
                raise ValueError(
                    f"unknown exception type {name!r}; the types are {', '.join(sorted(known))}"
                )
    return value


#: ``[routing]``: exception type → route, the defaults under what a file gives.
Routing = Annotated[
    dict[str, Route],
    BeforeValidator(_merge_defaults(DEFAULT_ROUTES, "shipping_delay")),
    BeforeValidator(_known_types),
]
#: ``[escalation]``: policy name → policy, the defaults under what a file gives.
Policies = Annotated[
    dict[str, EscalationPolicy], BeforeValidator(_merge_defaults(DEFAULT_POLICIES, "general"))
]


class DeadlineRule(_Rule):
    """How one kind of order's deadlines are computed (D1, D2); unset fields inherit.

    ``from`` names the order's time the deadlines count from (``paid_at`` or
    ``promised_ship_at``); ``pack_within`` and ``ship_within`` are added to it (0, or a
    negative duration, for "by the promised date"); ``warn_before`` is the lead of the
    warning.
    """

    start: Literal["paid_at", "promised_ship_at"] | None = Field(default=None, alias="from")
    pack_within: Seconds | None = None
    ship_within: Seconds | None = None
    warn_before: Seconds | None = None

    def over(self, base: DeadlineRule) -> DeadlineRule:
        """This rule's fields where set, ``base``'s elsewhere."""
        given = self.model_dump(exclude_none=True)
        return base.model_copy(update=given)


_TYPE_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    "normal": {"from": "paid_at", "pack_within": "24h", "ship_within": "48h"},
    "presale": {"from": "promised_ship_at", "pack_within": "0s", "ship_within": "0s"},
}


class DeadlineRules(_Rule):
    """``[deadlines]``: the warning lead, a rule per order type, and per-shop overrides.

    ``[deadlines.shops."pdd-main".normal]`` changes only what it names of the
    ``normal`` rule for that shop.
    """

    warn_before: Seconds = dt.timedelta(hours=6)
    normal: DeadlineRule = DeadlineRule.model_validate(_TYPE_DEFAULTS["normal"])
    presale: DeadlineRule = DeadlineRule.model_validate(_TYPE_DEFAULTS["presale"])
    shops: dict[str, dict[Literal["normal", "presale"], DeadlineRule]] = Field(default_factory=dict)

    @field_validator("normal", "presale", mode="before")
    @classmethod
    def _over_defaults(cls, value: object, info: Any) -> object:
        defaults = _TYPE_DEFAULTS[info.field_name]
        if isinstance(value, Mapping):
            return {**defaults, **value}
        return value

    def effective(self, *, shop: str, order_type: str) -> tuple[str, dict[str, Any]]:
        """``(name, rule)`` for an order of ``shop`` and ``order_type``.

        ``rule`` is JSON-shaped, complete, and carries ``version``: a short hash of its
        content, so an order keeps the rule (and version) it was planned with.
        """
        kind: Literal["normal", "presale"] = "presale" if order_type == "presale" else "normal"
        rule = getattr(self, kind)
        name: str = kind
        override = self.shops.get(shop, {}).get(kind)
        if override is not None:
            rule, name = override.over(rule), f"{shop}/{kind}"
        warn = rule.warn_before if rule.warn_before is not None else self.warn_before
        body: dict[str, Any] = {
            "rule": name,
            "from": rule.start or "paid_at",
            "pack_within_s": int((rule.pack_within or dt.timedelta(0)).total_seconds()),
            "ship_within_s": int((rule.ship_within or dt.timedelta(0)).total_seconds()),
            "warn_before_s": int(warn.total_seconds()),
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        body["version"] = digest[:10]
        return name, body


class WatchRules(_Rule):
    """Everything the watch needs besides the database, the site and the time."""

    tick_every: Seconds = dt.timedelta(seconds=15)
    deadlines: DeadlineRules = Field(default_factory=DeadlineRules)
    routing: Routing = Field(default_factory=lambda: routing_table({}))
    escalation: Policies = Field(default_factory=lambda: policy_table({}))
    offline_after: Seconds = dt.timedelta(minutes=5)
    labels_low: int = Field(default=50, ge=0)
    stalled_after: Hours = dt.timedelta(hours=48)
    tickets: TicketRoutes = Field(default_factory=lambda: dict(DEFAULT_TICKET_ROUTES))

    @model_validator(mode="after")
    def _policies_exist(self) -> WatchRules:
        for kind, route in self.routing.items():
            if route.policy_name not in self.escalation:
                raise ValueError(
                    f"routing.{kind}: no escalation policy {route.policy_name!r} "
                    f"(there are {', '.join(sorted(self.escalation))})"
                )
        return self

    def route(self, kind: str) -> Route:
        """The route of exception type ``kind``."""
        return self.routing[kind]

    def policy(self, name: str) -> EscalationPolicy:
        """The escalation policy ``name`` (``general`` when there is none of that name)."""
        return self.escalation.get(name) or self.escalation["general"]


def routing_table(given: Mapping[str, Any]) -> dict[str, Route]:
    """The routing table: the defaults with ``given`` laid over them."""
    merged = _merge_defaults(DEFAULT_ROUTES, "shipping_delay")(_known_types(dict(given)))
    assert isinstance(merged, dict)
    return {k: Route.model_validate(v) for k, v in merged.items()}


def policy_table(given: Mapping[str, Any]) -> dict[str, EscalationPolicy]:
    """The escalation policies: the defaults with ``given`` laid over them."""
    merged = _merge_defaults(DEFAULT_POLICIES, "general")(dict(given))
    assert isinstance(merged, dict)
    return {k: EscalationPolicy.model_validate(v) for k, v in merged.items()}


def allowed_to_ack(policy: EscalationPolicy | Mapping[str, Any], who: str) -> bool:
    """Whether ``who`` may acknowledge under ``policy`` (its ``acknowledgers``)."""
    patterns = (
        policy.acknowledgers
        if isinstance(policy, EscalationPolicy)
        else list(policy.get("acknowledgers", ["*"]))
    )
    return bool(who) and any(fnmatch.fnmatchcase(who, str(p)) for p in patterns)
