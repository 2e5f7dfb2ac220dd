"""Orders: importing order files and finding what a station has not yet received.

Every insert or change of an order takes a new global ``order_seq``; a station holds a
cursor (the highest ``order_seq`` it has) and central sends it everything above. An
identical re-import changes nothing, so importing the same file twice sends nothing.

Each order is read with the one order model (:mod:`sync.order`, ``docs/order.md``): a
file with anything that is not an order is refused whole, naming record (or CSV line)
and field. A valid order that cannot be packed yet (no tracking number, no address, on
hold) is imported — its deadline runs — with the reasons the bench would give, kept in
``blocked_reasons`` for the page and the deadline watch.

The file formats are read by :mod:`sync.orderfile` (stations import the same files);
its names are re-exported here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from central.db import READ_ONLY, orders, sequences, utcnow
from central.watch.deadlines import plan as plan_deadlines
from central.watch.deadlines import sync_order as sync_deadlines
from central.watch.rules import DeadlineRules
from sync.order import InvalidOrder, Order, packing_blockers, validate_order
from sync.orderfile import (
    CSV_COLUMNS,
    OrderFileError,
    parse_csv_orders,
    parse_json_orders,
    read_orders_file,
)

__all__ = [
    "CSV_COLUMNS",
    "ImportResult",
    "OrderFileError",
    "StoredOrder",
    "blocked_orders",
    "current_order_seq",
    "get_order",
    "import_orders",
    "orders_after",
    "parse_csv_orders",
    "parse_json_orders",
    "read_orders_file",
]


log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- storing


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImportResult:
    """What an import did, by order number."""

    added: list[str]
    changed: list[str]
    unchanged: list[str]
    order_seq: int
    #: Every imported order that cannot be packed yet, with the bench's reasons (B1),
    #: in file order.
    blocked: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def summary(self) -> str:
        """One line for the person who ran the import."""
        held = f", {len(self.blocked)} not packable yet" if self.blocked else ""
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.unchanged)} unchanged{held} (order seq now {self.order_seq})"
        )

    def warnings(self) -> list[str]:
        """One line per order the bench would refuse now, with its reasons."""
        return [
            f"warning: {order_no} cannot be packed yet: {'; '.join(reasons)}"
            for order_no, reasons in self.blocked.items()
        ]


@dataclasses.dataclass(kw_only=True)
class _Held:
    revision: int
    body: dict[str, Any]
    reasons: list[str]
    created_at: dt.datetime
    rule: dict[str, Any] | None


def import_orders(
    engine: Engine, batch: Sequence[Order], *, deadlines: DeadlineRules | None = None
) -> ImportResult:
    """Upsert ``batch`` in one transaction.

    A new order gets revision 1, a changed one revision + 1, each with a new
    ``order_seq``; an identical one is left alone (only its blocked reasons are brought
    up to date, which sends nothing). Every order's :func:`~sync.order.packing_blockers`
    are stored with it, and its ``pack_by`` and ``ship_by`` are computed from
    ``deadlines`` (the defaults without), kept with the rule's version, set in the order
    sent to the stations and watched from then on (:mod:`central.watch.deadlines`).
    """
    rules = deadlines or DeadlineRules()
    added: list[str] = []
    changed: list[str] = []
    unchanged: list[str] = []
    blocked: dict[str, list[str]] = {}
    now = utcnow()
    with engine.begin() as conn:
        # Take the counter's row lock first and hold it to the commit: concurrent
        # imports then commit in order_seq order (see central.db.sequences).
        seq = conn.execute(
            sa.select(sequences.c.value).where(sequences.c.name == "order_seq").with_for_update()
        ).scalar_one()
        stored: dict[str, _Held] = {}
        numbers = [o.order_no for o in batch]
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            for row in conn.execute(
                sa.select(
                    orders.c.order_no,
                    orders.c.revision,
                    orders.c.body,
                    orders.c.blocked_reasons,
                    orders.c.created_at,
                    orders.c.deadline_rule,
                ).where(orders.c.order_no.in_(chunk))
            ):
                stored[row.order_no] = _Held(
                    revision=row.revision,
                    body=row.body,
                    reasons=list(row.blocked_reasons),
                    created_at=row.created_at,
                    rule=row.deadline_rule,
                )
        for given in batch:
            held = stored.get(given.order_no)
            plan = plan_deadlines(
                given,
                rules=rules,
                first_seen=held.created_at if held is not None else now,
                stored_rule=held.rule if held is not None else None,
            )
            order = given.model_copy(update={"pack_by": plan.pack_by, "ship_by": plan.ship_by})
            body = order.model_dump(mode="json", exclude={"revision"})
            reasons = packing_blockers(order)
            if reasons:
                blocked[order.order_no] = reasons
            values = {
                "shop": order.shop,
                "order_type": str(order.order_type),
                "status": str(order.status),
                "body": body,
                "blocked": bool(reasons),
                "blocked_reasons": reasons,
                "updated_at": now,
                "pack_by": plan.pack_by,
                "ship_by": plan.ship_by,
                "deadline_rule": plan.rule,
            }
            if held is not None and held.body == body:
                unchanged.append(order.order_no)
                if held.reasons != reasons:  # the rules changed since it was stored
                    conn.execute(
                        orders.update()
                        .where(orders.c.order_no == order.order_no)
                        .values(blocked=bool(reasons), blocked_reasons=reasons)
                    )
                continue
            seq += 1
            if held is None:
                conn.execute(
                    orders.insert().values(
                        order_no=order.order_no, order_seq=seq, revision=1, created_at=now, **values
                    )
                )
                added.append(order.order_no)
                held = _Held(revision=1, body=body, reasons=reasons, created_at=now, rule=plan.rule)
            else:
                conn.execute(
                    orders.update()
                    .where(orders.c.order_no == order.order_no)
                    .values(order_seq=seq, revision=held.revision + 1, **values)
                )
                changed.append(order.order_no)
                held = dataclasses.replace(
                    held, revision=held.revision + 1, body=body, reasons=reasons, rule=plan.rule
                )
            stored[order.order_no] = held
            sync_deadlines(
                conn,
                order_no=order.order_no,
                status=str(order.status),
                pack_by=plan.pack_by,
                ship_by=plan.ship_by,
                warn_before=plan.warn_before,
                now=now,
            )
        conn.execute(sequences.update().where(sequences.c.name == "order_seq").values(value=seq))
    return ImportResult(
        added=added, changed=changed, unchanged=unchanged, order_seq=seq, blocked=blocked
    )


# --------------------------------------------------------------------------- reading


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoredOrder:
    """An order as central holds it: the order, its place in the downlink, why it waits.

    ``blocked_reasons`` are the bench's words for why it cannot be packed now (B1),
    empty when it can: the page and the deadline watch show "blocked: missing tracking
    number" from here. ``order`` is ``None`` only for an order stored before the order
    rules were one whose body they refuse (its reason says to import it again).
    """

    order_no: str
    order: Order | None
    order_seq: int
    revision: int
    blocked_reasons: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def blocked(self) -> bool:
        """True while the bench would refuse the order."""
        return bool(self.blocked_reasons)


def _conn_or_engine(bind: Engine | Connection) -> Connection:
    return bind.connect().execution_options(**READ_ONLY) if isinstance(bind, Engine) else bind


def _read(bind: Engine | Connection, query: sa.Select[Any]) -> list[sa.RowMapping]:
    if isinstance(bind, Connection):
        return list(bind.execute(query).mappings())
    with _conn_or_engine(bind) as conn:
        return list(conn.execute(query).mappings())


def _order(row: sa.RowMapping) -> Order:
    # Stored bodies passed the model at import; read them as the wire does.
    return validate_order({**row["body"], "revision": row["revision"]})


def _stored(row: sa.RowMapping) -> StoredOrder:
    try:
        order: Order | None = _order(row)
    except InvalidOrder:
        order = None
    return StoredOrder(
        order_no=row["order_no"],
        order=order,
        order_seq=int(row["order_seq"]),
        revision=int(row["revision"]),
        blocked_reasons=list(row["blocked_reasons"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


_STORED_COLUMNS = (
    orders.c.order_no,
    orders.c.order_seq,
    orders.c.revision,
    orders.c.body,
    orders.c.blocked_reasons,
    orders.c.created_at,
    orders.c.updated_at,
)


def current_order_seq(bind: Engine | Connection) -> int:
    """The highest ``order_seq`` of any committed order (0 when there is none)."""
    query = sa.select(sa.func.coalesce(sa.func.max(orders.c.order_seq), 0).label("seq"))
    return int(_read(bind, query)[0]["seq"])


def orders_after(
    bind: Engine | Connection, *, cursor: int, limit: int | None = None
) -> list[tuple[int, Order]]:
    """``(order_seq, order)`` of every order above ``cursor``, in ``order_seq`` order.

    Each order carries its current revision, so a late message never overwrites a
    newer one at the station. Blocked orders are sent too: the bench shows the packer
    why it refuses them.
    """
    query = (
        sa.select(orders.c.order_no, orders.c.order_seq, orders.c.revision, orders.c.body)
        .where(orders.c.order_seq > cursor)
        .order_by(orders.c.order_seq)
    )
    if limit is not None:
        query = query.limit(limit)
    found: list[tuple[int, Order]] = []
    for row in _read(bind, query):
        try:
            found.append((int(row["order_seq"]), _order(row)))
        except InvalidOrder as exc:
            # Stored before the order rules were one (migration 0002 marked it
            # blocked): a bench could not use it, so it waits for a new import.
            log.warning("order %s not sent: stored body is invalid: %s", row["order_no"], exc)
    return found


def get_order(bind: Engine | Connection, order_no: str) -> StoredOrder | None:
    """The order ``order_no`` as central holds it, or ``None``."""
    rows = _read(bind, sa.select(*_STORED_COLUMNS).where(orders.c.order_no == order_no))
    return _stored(rows[0]) if rows else None


def blocked_orders(bind: Engine | Connection, *, limit: int | None = None) -> list[StoredOrder]:
    """Orders the bench would refuse now, with their reasons, oldest change first."""
    query = sa.select(*_STORED_COLUMNS).where(orders.c.blocked).order_by(orders.c.order_seq)
    if limit is not None:
        query = query.limit(limit)
    return [_stored(row) for row in _read(bind, query)]
