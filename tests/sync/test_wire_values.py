"""Every number on the wire is finite and in range; a bad one is a WireError with a reason.

Python's json reads ``NaN``, ``Infinity`` and ``1e999`` as floats, which used to pass
decoding and then fail inside the database with a multi-line SQL dump while the station
kept resending. Orders are read one at a time, so one a station cannot read does not
hold back the others.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.messages import (
    MAX_SEQ,
    MAX_WALL,
    Ack,
    EventBatch,
    StationStatus,
    WireError,
    decode,
    decode_orders,
    encode,
)


def event(**over: Any) -> dict[str, Any]:
    return {
        "event_id": "e-1",
        "station": "b1",
        "seq": 1,
        "type": "scan.rejected",
        "at_wall": 1_800_000_000.5,
        "at_mono": 1234.5,
        "boot_id": "boot-1",
        "payload": {"text": "x", "reason": "y"},
        **over,
    }


def batch_text(*events: dict[str, Any], **over: Any) -> str:
    return json.dumps({"v": 1, "station": "b1", "events": list(events), **over})


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_a_time_that_is_not_a_finite_number_is_refused(literal: str) -> None:
    text = batch_text(event()).replace("1800000000.5", literal)
    with pytest.raises(WireError) as info:
        decode(EventBatch, text)
    assert info.value.reason == "invalid_value"
    assert "not a finite number" in str(info.value)


def test_a_non_finite_number_anywhere_is_refused_even_inside_a_payload() -> None:
    text = batch_text(event(payload={"text": "x", "reason": "y", "weight": 1})).replace(
        '"weight": 1', '"weight": NaN'
    )
    with pytest.raises(WireError) as info:
        decode(EventBatch, text)
    assert info.value.reason == "invalid_value"


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("at_wall", -1.0, "events.0.at_wall"),
        ("at_wall", MAX_WALL + 1, "events.0.at_wall"),
        ("at_mono", -0.5, "events.0.at_mono"),
        ("seq", 0, "events.0.seq"),
        ("seq", MAX_SEQ + 1, "events.0.seq"),
        ("version", 0, "events.0.version"),
        ("boot_id", "b" * 65, "events.0.boot_id"),
        ("type", "t" * 65, "events.0.type"),
    ],
)
def test_values_out_of_range_are_refused_naming_the_field(
    field: str, value: object, where: str
) -> None:
    with pytest.raises(WireError) as info:
        decode(EventBatch, batch_text(event(**{field: value})))
    assert info.value.reason == "invalid_value"
    assert where in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("labels_left", -1),
        ("backlog", -3),
        ("orders_cursor", -1),
        ("disk_free_bytes", -1),
        ("orders_held", -2),
        ("labels_left", 2**31),
        ("backlog_oldest_at", -5.0),
    ],
)
def test_a_status_with_a_negative_or_oversized_count_is_refused(field: str, value: int) -> None:
    text = json.dumps({"station": "b1", "online": True, field: value})
    with pytest.raises(WireError) as info:
        decode(StationStatus, text)
    assert info.value.reason == "invalid_value"
    assert field in str(info.value)


def test_another_wire_version_is_its_own_reason() -> None:
    with pytest.raises(WireError) as info:
        decode(EventBatch, batch_text(event(), v=2))
    assert info.value.reason == "wrong_version"
    assert "wire version 2" in str(info.value)


@pytest.mark.parametrize(
    "text", ["\xff not json", '{"station": "b1"}', "[]", '{"v": 1, "station": "b1", "events": 3}']
)
def test_what_is_not_the_message_is_malformed(text: str) -> None:
    with pytest.raises(WireError) as info:
        decode(EventBatch, text)
    assert info.value.reason == "malformed"


def test_a_status_from_an_older_station_still_decodes() -> None:
    old = decode(StationStatus, '{"v": 1, "station": "b1", "online": true, "backlog": 2}')
    assert old.backlog == 2 and old.instance_id is None and old.clock_skew_s is None


def test_an_ack_from_an_older_central_still_decodes() -> None:
    ack = decode(Ack, '{"v": 1, "station": "b1", "seq": 4}')
    assert (ack.seq, ack.at, ack.instance_id, ack.name_conflict) == (4, None, None, None)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_time_either_decodes_in_range_or_is_a_wire_error(value: float) -> None:
    # json.dumps writes NaN and Infinity as the literals a garbled sender would.
    text = json.dumps({"station": "b1", "online": True, "at_wall": value})
    try:
        status = decode(StationStatus, text)
    except WireError as exc:
        assert exc.reason == "invalid_value"
        assert not (math.isfinite(value) and 0 <= value <= MAX_WALL)
    else:
        assert math.isfinite(status.at_wall) and 0 <= status.at_wall <= MAX_WALL


def test_orders_are_read_one_at_a_time() -> None:
    orders = [
        {"order_no": "A-1", "tracking_no": "SF1", "carrier": "SF Express"},
        # A status a newer central knows and this station does not.
        {"order_no": "A-2", "status": "presale_waiting", "carrier": "SF Express"},
        {"order_no": "A-3", "tracking_no": "SF3", "carrier": "SF Express"},
        {"lines": "not even an order"},
    ]
    message, refused = decode_orders(json.dumps({"v": 1, "orders": orders, "cursor": 9}))
    assert [o.order_no for o in message.orders] == ["A-1", "A-3"]
    assert message.cursor == 9
    assert [no for no, _why in refused] == ["A-2", "#4"]
    assert refused[0][1].startswith("status:")
    # What is left is an ordinary orders message, as the store takes it.
    assert json.loads(encode(message))["cursor"] == 9


def test_a_bad_orders_envelope_is_still_refused_whole() -> None:
    with pytest.raises(WireError) as info:
        decode_orders('{"v": 1, "orders": [], "cursor": -1}')
    assert info.value.reason == "invalid_value"
