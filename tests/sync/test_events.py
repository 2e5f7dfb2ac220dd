"""The event catalogue: strict at the station, lenient to newer fields at central, documented."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import Field

from sync.events import (
    CATALOGUE,
    BadEventPayload,
    EventPayload,
    LabelPrinted,
    ScanRejected,
    ShipmentShipped,
    UnknownEventType,
    catalogued,
    decode_payload,
    markdown,
    model_for,
    validate_payload,
)

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "events.md"

SHIPPED = {
    "order_no": "PDD-1",
    "tracking_no": "SF0001",
    "carrier": "SF Express",
    "service": "Standard",
    "parcel_no": 1,
    "parcel_count": 2,
    "operator": "op-7",
    "print_job_id": "PDD-1-r1-waybill-1",
    "print_verified": True,
}


def test_the_catalogue_holds_what_stations_record() -> None:
    assert list(CATALOGUE)[:3] == ["shipment.shipped", "label.printed", "scan.rejected"]
    # The bench's events (docs/station.md), names as central and the page read them.
    assert set(CATALOGUE) >= {
        "operator.login",
        "operator.logout",
        "order.started",
        "item.verified",
        "alarm.acknowledged",
        "label.voided",
        "order.packed",
        "packing.abandoned",
        "qc.checked",
        "return.inspected",
        "problem.reported",
        "device.state",
        "pii.purged",
    }
    for name, model in CATALOGUE.items():
        assert name == model.TYPE and model.VERSION >= 1
        assert model_for(name) is model
        assert model.__doc__, f"{name} has no docstring"
        for field, info in model.model_fields.items():
            assert info.description, f"{name}.{field} has no description"
    assert tuple(CATALOGUE)[:3] == (ShipmentShipped.TYPE, LabelPrinted.TYPE, ScanRejected.TYPE)
    assert model_for("no.such") is None


def test_docs_events_md_is_generated_from_the_catalogue() -> None:
    assert DOC.read_text() == markdown(), "run: python -m sync.events > docs/events.md"
    out = subprocess.run(
        [sys.executable, "-m", "sync.events"], capture_output=True, text=True, check=True
    )
    assert out.stdout == markdown()
    for name, model in CATALOGUE.items():
        assert f"## `{name}` (version {model.VERSION})" in out.stdout
        for field in model.model_fields:
            assert f"| `{field}` |" in out.stdout


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"order_no": ""}, "order_no"),
        ({"parcel_no": 0}, "parcel_no"),
        ({"parcel_no": "1"}, "parcel_no"),  # strict: a number in a string is a bug
        ({"print_verified": 1}, "print_verified"),
        ({"carrier": None}, "carrier"),
        ({"typo_field": "x"}, "unknown field typo_field"),
    ],
)
def test_a_station_payload_that_does_not_fit_is_refused(
    change: dict[str, object], words: str
) -> None:
    with pytest.raises(BadEventPayload, match=words) as caught:
        validate_payload("shipment.shipped", {**SHIPPED, **change})
    assert str(caught.value).startswith("shipment.shipped: ")


def test_a_missing_field_is_refused_and_an_optional_one_defaults() -> None:
    missing = {k: v for k, v in SHIPPED.items() if k != "operator"}
    with pytest.raises(BadEventPayload, match="operator: Field required"):
        validate_payload("shipment.shipped", missing)
    rejected = validate_payload("scan.rejected", {"text": "X1", "reason": "unknown order X1"})
    assert rejected.model_dump(mode="json") == {
        "text": "X1",
        "reason": "unknown order X1",
        "order_no": None,
        "code": "",
        "operator": None,
    }
    # A shipment recorded before parcels had contents still decodes (optional fields).
    old = validate_payload("shipment.shipped", SHIPPED)
    assert old.model_dump(mode="json")["confirm"] == "auto"
    assert old.model_dump(mode="json")["contents"] == []


def test_an_uncatalogued_type_is_refused_at_the_source() -> None:
    with pytest.raises(UnknownEventType, match=r"shipment\.shiped"):
        validate_payload("shipment.shiped", SHIPPED)


def test_central_decodes_with_the_same_model() -> None:
    decoded = decode_payload("shipment.shipped", SHIPPED)
    assert isinstance(decoded, ShipmentShipped) and decoded.parcel_count == 2
    # A newer station may add an optional field under the same version.
    newer = decode_payload("shipment.shipped", {**SHIPPED, "weight_g": 300})
    assert newer == decoded
    assert decode_payload("something.new", {"whatever": 1}) is None  # stored, not an error
    with pytest.raises(BadEventPayload, match="order_no"):
        decode_payload("shipment.shipped", {**SHIPPED, "order_no": ""})
    with pytest.raises(BadEventPayload, match="not an object"):
        decode_payload("label.printed", ["a", "list"])
    with pytest.raises(BadEventPayload, match="version 2 is not known"):
        decode_payload("shipment.shipped", SHIPPED, version=2)


@pytest.fixture
def scratch_type() -> Iterator[str]:
    yield "test.weighed"
    CATALOGUE.pop("test.weighed", None)


def test_adding_a_type_is_a_model_and_a_decorator(scratch_type: str) -> None:
    @catalogued(scratch_type, version=2)
    class Weighed(EventPayload):
        """A parcel was weighed."""

        order_no: str = Field(min_length=1, description="the order")
        grams: int = Field(ge=0, description="what the scale read")

    assert model_for(scratch_type) is Weighed and Weighed.VERSION == 2
    assert validate_payload(scratch_type, {"order_no": "A", "grams": 5}) == Weighed(
        order_no="A", grams=5
    )
    assert f"| `{scratch_type}` | 2 | A parcel was weighed. |" in markdown()
    assert "| `grams` | integer, ≥ 0 | required | what the scale read |" in markdown()
    with pytest.raises(ValueError, match="catalogued twice"):
        catalogued(scratch_type, version=3)(Weighed)
    with pytest.raises(ValueError, match="at least 1"):
        catalogued("test.zero", version=0)
