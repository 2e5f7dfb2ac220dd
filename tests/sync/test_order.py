"""The one order model: its rules, its messages, and docs/order.md as its contract."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from sync.messages import OrdersMessage, decode, encode
from sync.order import (
    CODE_MAX,
    MAX_LINES,
    MAX_PARCELS,
    MAX_QTY,
    InvalidOrder,
    Order,
    OrderLine,
    OrderStatus,
    ParcelRef,
    Party,
    ReturnInfo,
    ReturnOutcome,
    packing_blockers,
    validate_order,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((REPO / "docs/examples/order.json").read_text())
DOC = (REPO / "docs" / "order.md").read_text(encoding="utf-8")


def example(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(EXAMPLE)), **changes}


def refused(data: dict[str, Any], *, unknown_fields: str = "refuse") -> str:
    with pytest.raises(InvalidOrder) as info:
        validate_order(data, unknown_fields=unknown_fields)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    return message


# The inputs the import used to accept although the bench always refused them, and
# the exact message each now gets.
BAD = [
    ({"tracking_no": "顺丰SF123"}, "tracking_no: must be ASCII letters, digits and marks"),
    ({"lines": [{"barcode": "6901234567892", "qty": 1}]}, "lines[0].sku: missing"),
    ({"status": "weird"}, "status: must be one of 'ready', 'held', 'address_change', "),
    ({"order_type": "bogus"}, "order_type: must be one of 'normal' or 'presale', got \"bogus\""),
    ({"paid_at": "yesterday"}, "paid_at: must be an ISO 8601 time with its zone, e.g. "),
    ({"lines": [{"sku": "A", "qty": True}]}, "lines[0].qty: must be a whole number, got true"),
    (
        {"lines": [{"sku": "A", "qty": 10**20}]},
        f"lines[0].qty: must be at most {MAX_QTY}, got 100000000000000000000",
    ),
    ({"parcels": 1_000_000}, f"parcels: must be at most {MAX_PARCELS}, got 1000000"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[next(iter(c)) for c, _ in BAD])
def test_what_the_bench_would_always_refuse_is_not_an_order(
    change: dict[str, Any], message: str
) -> None:
    assert refused(example(**change)).startswith(message)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"order_no": ""}, "order_no: must not be empty"),
        ({"order_no": 17}, "order_no: must be text, got 17"),
        ({"order_no": "A" * (CODE_MAX + 1)}, f"order_no: must be at most {CODE_MAX} characters"),
        ({"order_no": "PDD 1"}, "order_no: must be ASCII letters"),
        ({"paid_at": "2026-11-23T09:15:00"}, "paid_at: must be an ISO 8601 time with its zone"),
        ({"paid_at": "2026-11-23"}, "paid_at: must be an ISO 8601 time with its zone"),
        ({"paid_at": 1763860500}, "paid_at: must be an ISO 8601 time with its zone"),
        ({"promised_ship_at": "soon"}, "promised_ship_at: must be an ISO 8601 time"),
        ({"parcels": 0}, "parcels: must be at least 1, got 0"),
        ({"parcels": "2"}, 'parcels: must be a whole number, got "2"'),
        ({"parcels": 2.0}, "parcels: must be a whole number, got 2.0"),
        ({"lines": [{"sku": "A", "qty": 0}]}, "lines[0].qty: must be at least 1, got 0"),
        (
            {"lines": [{"sku": "A", "qty": "two"}]},
            'lines[0].qty: must be a whole number, got "two"',
        ),
        ({"lines": [{"sku": "A"}] * (MAX_LINES + 1)}, f"lines: must have at most {MAX_LINES}"),
        ({"lines": {"sku": "A"}}, "lines: must be a list"),
        ({"lines": ["A"]}, 'lines[0]: must be an object, got "A"'),
        ({"lines": [{"sku": "纯棉T恤"}]}, "lines[0].sku: must be ASCII letters"),
        ({"recipient": "张三"}, 'recipient: must be an object, got "张三"'),
        (
            {"recipient": {"phone": "call me"}},
            "recipient.phone: must be digits, spaces and the marks",
        ),
        ({"recipient": {"name": "张" * 65}}, "recipient.name: must be at most 64 characters"),
        ({"recipient": {"address": "路\x00"}}, "recipient.address: must not contain control"),
        ({"note": "x" * 201}, "note: must be at most 200 characters, got 201"),
        ({"return": {"outcome": "lost"}}, "return.outcome: must be one of 'restock', "),
        ({"return": {"reason": "x"}}, "return.outcome: missing"),
        ({"revision": 0}, "revision: must be at least 1, got 0"),
        ({"tracking_number": "SF1"}, "tracking_number: unknown field"),
        ({"recipient": {"nick": "x"}}, "recipient.nick: unknown field"),
        ({"lines": [{"sku": "A", "quantity": 2}]}, "lines[0].quantity: unknown field"),
    ],
)
def test_malformed_orders_name_the_field(change: dict[str, Any], message: str) -> None:
    assert refused(example(**change)).startswith(message)


def test_a_value_is_shown_cut_short() -> None:
    message = refused(example(order_type="x" * 500))
    assert message.endswith('got "' + "x" * 36 + "...")


def test_unknown_fields_are_ignored_on_the_wire_refused_at_import() -> None:
    data = example(gift_wrap="red paper")  # a field a newer central sends
    assert validate_order(data).order_no == EXAMPLE["order_no"]
    assert "gift_wrap" not in validate_order(data).model_dump()
    assert refused(data) == "gift_wrap: unknown field"
    message = OrdersMessage(orders=[validate_order(EXAMPLE)], cursor=1)
    raw = json.loads(encode(message))
    raw["orders"][0]["parcel_list"] = [{"tracking_no": "SF2"}]
    assert decode(OrdersMessage, json.dumps(raw)).orders[0].order_no == EXAMPLE["order_no"]


def test_optional_means_optional() -> None:
    order = validate_order({"order_no": "A", "lines": [{"sku": "S"}]}, unknown_fields="refuse")
    assert order.sender is None and order.return_info is None
    assert order.lines[0].qty == 1 and order.parcels == 1
    assert order.status is OrderStatus.READY and order.recipient == Party()
    # null is the same as leaving a field out
    nulls = example(sender=None, hold_reason=None, service=None, lines=[{"sku": "S", "qty": None}])
    order = validate_order(nulls, unknown_fields="refuse")
    assert (order.sender, order.service, order.lines[0].qty) == (None, "", 1)
    # a sender with nothing in it is no sender (the waybill omits the block)
    assert validate_order(example(sender={"name": " ", "phone": ""})).sender is None


def test_text_is_trimmed_and_kept_on_one_line() -> None:
    order = validate_order(
        example(
            tracking_no="  SF1  ", recipient={"name": "张三", "address": "深圳市\n南山区\t8 号"}
        )
    )
    assert order.tracking_no == "SF1"
    assert order.recipient.address == "深圳市 南山区 8 号"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T09:15:00+08:00", datetime(2026, 11, 23, 1, 15, tzinfo=UTC)),
        ("2026-11-23T01:15:00Z", datetime(2026, 11, 23, 1, 15, tzinfo=UTC)),
        ("2026-11-23 09:15:00.5+08:00", datetime(2026, 11, 23, 1, 15, 0, 500000, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_with_a_zone(text: str, expected: datetime) -> None:
    order = validate_order(example(paid_at=text))
    assert order.paid_at == expected and order.paid_at is not None
    assert order.paid_at.utcoffset() is not None


def test_bounds_are_inclusive() -> None:
    line = {"sku": "S" * CODE_MAX, "barcode": "9" * CODE_MAX, "qty": MAX_QTY}
    order = validate_order(
        example(order_no="O" * CODE_MAX, parcels=MAX_PARCELS, lines=[line] * MAX_LINES)
    )
    assert len(order.lines) == MAX_LINES and order.parcels == MAX_PARCELS


def test_the_wire_and_the_store_keep_the_order_exactly() -> None:
    order = validate_order(json.loads((REPO / "docs/examples/order-return.json").read_text()))
    assert order.return_info == ReturnInfo(
        outcome=ReturnOutcome.DAMAGED, reason="外包装破损 商品划痕", rma_no="RMA20261130007"
    )
    body = order.model_dump(mode="json")
    assert body["return"]["outcome"] == "damaged" and body["paid_at"] == "2026-11-23T09:15:00+08:00"
    assert validate_order(body, unknown_fields="refuse") == order
    assert Order.model_validate_json(order.model_dump_json()) == order
    message = decode(OrdersMessage, encode(OrdersMessage(orders=[order], cursor=7)))
    assert message.orders == [order]


def test_scan_code_and_address() -> None:
    assert OrderLine(sku="TEE").scan_code == "TEE"
    assert OrderLine(sku="TEE", barcode="690").scan_code == "690"
    party = Party(province="广东省", city="深圳市", address="科技园 8 号")
    assert party.full_address == "广东省深圳市 科技园 8 号"
    assert Party(address="科技园").full_address == "科技园"


@pytest.mark.parametrize(
    ("change", "reasons"),
    [
        ({}, []),
        ({"tracking_no": ""}, ["missing tracking number"]),
        ({"tracking_no": "", "carrier": None}, ["missing carrier, tracking number"]),
        (
            {"recipient": {"name": "张三"}},
            ["missing recipient phone, recipient address"],
        ),
        ({"lines": []}, ["no order lines"]),
        ({"status": "held"}, ["order is on hold"]),
        (
            {"status": "address_change", "hold_reason": "buyer moved"},
            ["address change pending: buyer moved"],
        ),
        (
            {"status": "cancelled", "tracking_no": "", "lines": None},
            ["order was cancelled", "missing tracking number", "no order lines"],
        ),
        ({"sender": None, "service": "", "paid_at": None, "note": ""}, []),
    ],
)
def test_packing_blockers_in_the_packers_words(change: dict[str, Any], reasons: list[str]) -> None:
    assert packing_blockers(validate_order(example(**change))) == reasons


def _documented_fields() -> set[str]:
    return set(re.findall(r"^\| `([a-z_.\[\]]+)` \|", DOC, flags=re.M))


def _model_fields() -> set[str]:
    fields = {f.alias or name for name, f in Order.model_fields.items()}
    fields |= {f"recipient.{name}" for name in Party.model_fields}
    fields |= {f"lines[].{name}" for name in OrderLine.model_fields}
    fields |= {f"return.{name}" for name in ReturnInfo.model_fields}
    fields |= {f"parcels[].{name}" for name in ParcelRef.model_fields}
    return fields


def test_docs_order_md_lists_every_field_of_the_model() -> None:
    assert _documented_fields() == _model_fields()


def test_docs_order_md_states_the_bounds_and_choices() -> None:
    for bound in (CODE_MAX, MAX_LINES, MAX_QTY, MAX_PARCELS):
        assert str(bound) in DOC, bound
    for status in OrderStatus:
        assert f"`{status}`" in DOC, status
    for outcome in ReturnOutcome:
        assert f"`{outcome}`" in DOC, outcome


def test_shanghai_and_utc_are_the_same_moment() -> None:
    cst = timezone(timedelta(hours=8))
    a = validate_order(example(paid_at=datetime(2026, 11, 23, 9, 15, tzinfo=cst)))
    b = validate_order(example(paid_at="2026-11-23T01:15:00+00:00"))
    assert a.paid_at == b.paid_at


def test_the_return_object_is_called_return_in_files() -> None:
    data = example(return_info={"outcome": "restock"})
    assert refused(data) == "return_info: unknown field"
    order = Order(order_no="A", return_info=ReturnInfo(outcome=ReturnOutcome.RESTOCK))
    assert order.model_dump(mode="json")["return"] == {
        "outcome": "restock",
        "reason": "",
        "rma_no": "",
    }


def test_parcels_as_a_list_gives_each_parcel_its_own_tracking_number() -> None:
    order = validate_order(
        example(parcels=[{}, {"tracking_no": "SF2"}, {"tracking_no": "SF3"}]),
        unknown_fields="refuse",
    )
    assert order.parcel_count == 3
    # Parcel 1 without its own number carries the order's.
    tracking = [order.parcel_tracking(n) for n in (1, 2, 3)]
    assert tracking == [EXAMPLE["tracking_no"], "SF2", "SF3"]
    assert order.parcel_with_tracking("SF3") == 3
    assert order.parcel_with_tracking("nope") is None
    with pytest.raises(ValueError, match="no parcel 4"):
        order.parcel_tracking(4)
    # A count keeps working: every parcel carries the order's number.
    counted = validate_order(example(parcels=2))
    assert [counted.parcel_tracking(n) for n in (1, 2)] == [EXAMPLE["tracking_no"]] * 2
    # And it goes over the wire as it came.
    message = OrdersMessage(orders=[order], cursor=1)
    assert decode(OrdersMessage, encode(message)).orders[0] == order


@pytest.mark.parametrize(
    ("parcels", "message"),
    [
        ([], "parcels: must be at least 1, got 0"),
        ([{}] * (MAX_PARCELS + 1), f"parcels: must be at most {MAX_PARCELS}, got 51"),
        (
            [{"tracking_no": "SF2"}, {"tracking_no": "SF2"}],
            "parcels: parcel 2 repeats the tracking number of parcel 1",
        ),
        ([{"tracking_no": "SF 2"}], "parcels[0].tracking_no: must be ASCII"),
        ([{"tracking": "SF2"}], "parcels[0].tracking: unknown field"),
    ],
)
def test_a_bad_parcel_list_names_the_problem(parcels: Any, message: str) -> None:
    assert refused(example(parcels=parcels)).startswith(message)


def test_more_parcels_than_items_or_a_parcel_without_tracking_blocks_packing() -> None:
    one_item = {"lines": [{"sku": "A", "qty": 1}]}
    assert packing_blockers(validate_order(example(parcels=2, **one_item))) == [
        "2 parcels for 1 items: every parcel needs at least one item"
    ]
    untracked = validate_order(example(parcels=[{}, {}, {"tracking_no": "SF3"}]))
    assert packing_blockers(untracked) == ["missing tracking number of parcel 2"]


def test_deadlines_are_optional_times_with_a_zone() -> None:
    order = validate_order(example(pack_by="2026-11-24T09:15:00+08:00"), unknown_fields="refuse")
    assert order.pack_by is not None and order.ship_by is None
    assert refused(example(ship_by="2026-11-24")).startswith("ship_by: must be an ISO 8601 time")
