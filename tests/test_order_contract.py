"""One order contract: central's import, the downlink, the bench's audit and the labels agree.

Every example in docs/examples/ goes the whole way (the real import command, central's
orders query, the wire message, the station's store, the audit, every label kind), and
a property test generates orders, valid and not, and checks that the parts agree:

- import accepts exactly what the wire accepts (one model), so what the bench's audit
  accepts, import accepted;
- the reasons import reports and stores for an order equal the bench's audit of the
  order it receives;
- what import accepts, the renderers render (a waybill needs a tracking number, which
  is then among the reasons the order is blocked).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from central.db import open_db
from central.orders import (
    OrderFileError,
    get_order,
    import_orders,
    orders_after,
    parse_json_orders,
)
from drivers.fakes.scanner import ScriptedScanner
from drivers.labels import KINDS, render
from edge.agent import Agent
from edge.audit import audit
from edge.clock import SystemClock
from edge.factory import build_agent
from edge.settings import StationSettings
from edge.store import StationStore
from sync.events import ShipmentShipped
from sync.messages import OrdersMessage, WireError, decode, encode
from sync.order import (
    CODE_MAX,
    MAX_LINES,
    MAX_PARCELS,
    MAX_QTY,
    Order,
    OrderStatus,
    OrderType,
    ReturnInfo,
    ReturnOutcome,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = [*sorted((REPO / "docs" / "examples").glob("*.json")), REPO / "docs/examples/orders.csv"]
PRINTED_AT = datetime(2026, 11, 23, 10, 30, tzinfo=timezone(timedelta(hours=8)))
# The bench's default label (StationSettings) and the narrowest roll it takes.
BENCH_LABEL = ("100x180", 300)
ROLL = ("62", 300)


def _import(path: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "packline", "central", "import-orders", str(path), "--db-url", url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _downlink(
    engine: Engine, store: StationStore, *, cursor: int = 0, limit: int | None = None
) -> list[Order]:
    """Central's orders query → the wire message → the station's store, as the service does."""
    pending = orders_after(engine, cursor=cursor, limit=limit)
    message = OrdersMessage(orders=[o for _, o in pending], cursor=pending[-1][0])
    received = decode(OrdersMessage, encode(message))
    store.apply_orders(received)
    return received.orders


def _render_every_kind(order: Order) -> None:
    """Every label of ``order``: waybill on the bench's label and the roll, packing list,
    a product label per line, and the return label (with the bench's outcome if the
    order carries none)."""
    returned = None if order.return_info else ReturnInfo(outcome=ReturnOutcome.RESTOCK)
    for size, dpi in (BENCH_LABEL, ROLL):
        render("waybill", order, size=size, dpi=dpi, printed_at=PRINTED_AT)
    size, dpi = ROLL
    render("packing-list", order, size=size, dpi=dpi, printed_at=PRINTED_AT, qc=True)
    for i in range(len(order.lines)):
        render("product", order, size=size, dpi=dpi, printed_at=PRINTED_AT, line=i)
    render("return", order, size=size, dpi=dpi, printed_at=PRINTED_AT, returned=returned)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_imports_downlinks_passes_the_audit_and_renders(
    example: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    done = _import(example, url)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a single "cannot be packed yet" warning
    assert "added" in done.stdout and "not packable" not in done.stdout

    engine = open_db(url)
    store = StationStore(tmp_path / "station.sqlite", station="bench-1", clock=SystemClock())
    try:
        received = _downlink(engine, store)
        assert received
        for sent in received:
            stored = get_order(engine, sent.order_no)
            assert stored is not None and stored.blocked_reasons == []
            held = store.find_order(sent.order_no)
            assert held == sent == store.find_order(sent.tracking_no)  # by waybill scan too
            assert audit(held) == []
            assert set(KINDS) == {"waybill", "packing-list", "product", "return"}
            _render_every_kind(held)
            waybill = render("waybill", held, size="62", printed_at=PRINTED_AT)
            assert held.tracking_no in {b.text for b in zxingcpp.read_barcodes(waybill)}
    finally:
        store.close()
        engine.dispose()


def test_the_csv_example_is_the_one_docs_central_md_shows() -> None:
    doc = (REPO / "docs" / "central.md").read_text(encoding="utf-8")
    block = re.search(r"```csv\n(.*?)```", doc, flags=re.S)
    assert block is not None
    csv = (REPO / "docs" / "examples" / "orders.csv").read_text(encoding="utf-8")
    assert block.group(1) == csv


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Agent]:
    """A bench with a file printer; the MQTT session is never started (no network)."""
    settings = StationSettings(
        station="bench-1",
        site="contract",
        data_dir=tmp_path / "station",
        mqtt_url="mqtt://127.0.0.1:1",
        scanner="script:?interval=0",
        printer=f"file://{tmp_path / 'printed'}",
        label_size="62",
    )
    agent = build_agent(settings, version="test", scanner=ScriptedScanner(scans=[]))
    try:
        yield agent
    finally:
        agent.printer.close()
        agent.store.close()


def test_an_order_without_sender_or_qty_ships_at_the_bench(station: Agent, tmp_path: Path) -> None:
    # The CSV example has no sender and its second line no qty... in JSON terms.
    data = json.loads((REPO / "docs/examples/order.json").read_text(encoding="utf-8"))
    del data["sender"]
    data["lines"] = [{"sku": "TEE-BLK-M"}, {"sku": "CAP-RED", "qty": None}]
    (order,) = parse_json_orders(json.dumps(data), source="order.json")
    station.store.apply_orders(OrdersMessage(orders=[order], cursor=1))
    # The packer logs in, scans the waybill number and each item (the SKUs: no barcodes).
    for code in ["OP-1", order.tracking_no, "TEE-BLK-M"]:
        assert station.handle_scan(code).ok
    outcome = station.handle_scan("CAP-RED")
    assert outcome.outcome == "done", outcome.message
    assert [e.payload["order_no"] for e in station.store.events(type=ShipmentShipped.TYPE)] == [
        order.order_no
    ]
    assert list((tmp_path / "printed").glob("*-waybill-1.png"))


def test_a_blocked_order_is_refused_at_the_bench_with_the_imports_reasons(
    station: Agent, tmp_path: Path
) -> None:
    engine = open_db(f"sqlite:///{tmp_path / 'central.db'}")
    try:
        data = json.loads((REPO / "docs/examples/order.json").read_text(encoding="utf-8"))
        data |= {"tracking_no": "", "recipient": {"name": "张三"}}
        result = import_orders(engine, parse_json_orders(json.dumps(data), source="o.json"))
        (reasons,) = result.blocked.values()
        (order,) = _downlink(engine, station.store)
    finally:
        engine.dispose()
    station.handle_scan("OP-1")
    outcome = station.handle_scan(order.order_no)
    assert not outcome.ok
    # The import's words, then what the packer does about it.
    assert outcome.message == (
        f"cannot pack {order.order_no}: {'; '.join(reasons)} — put this order aside"
    )
    assert reasons == ["missing recipient phone, recipient address, tracking number"]


# --------------------------------------------------------------------------- property

CODE_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
codes = st.text(CODE_CHARS, min_size=1, max_size=CODE_MAX)
# Names and addresses as they come: CJK, Latin, digits, emoji (with joiners), and
# now and then any character at all (control characters are refused).
WORDS = "张三李四王五广东省深圳市南山区科技园高新南一道创维大厦号室楼栋单元 ABCxyz-0123456789"
EMOJI = ["🌸", "🫠", "👨\u200d👩\u200d👧", "❤️", "🇨🇳", "👍🏽"]
human = st.lists(st.one_of(st.sampled_from(list(WORDS)), st.sampled_from(EMOJI)), max_size=12).map(
    "".join
)


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), human, st.text(max_size=max_size)).filter(
        lambda s: len(s) <= max_size
    )


phones = st.one_of(st.just(""), st.from_regex(r"\A\+?[0-9][0-9 \-]{6,16}[0-9]\Z"))
times = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(2020, 1, 1),
        max_value=datetime(2030, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=8))]),
    ).map(datetime.isoformat),
)
party = st.fixed_dictionaries(
    {},
    optional={
        "name": text(64),
        "phone": phones,
        "province": text(32),
        "city": text(32),
        "district": text(32),
        "address": text(200),
        "postcode": st.from_regex(r"\A[0-9]{6}\Z"),
    },
)
line = st.fixed_dictionaries(
    {"sku": codes},
    optional={
        "name": text(100),
        "spec": text(64),
        "qty": st.integers(1, MAX_QTY),
        "barcode": codes,
    },
)
OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "shop": text(64),
    "order_type": st.sampled_from(list(OrderType)).map(str),
    "status": st.sampled_from([*["ready"] * 4, *map(str, OrderStatus)]),
    "hold_reason": st.one_of(st.none(), text(200)),
    "paid_at": times,
    "promised_ship_at": times,
    "carrier": st.one_of(st.sampled_from(["SF Express", "中通快递", ""]), text(64)),
    "service": text(64),
    "tracking_no": st.one_of(st.just(""), codes),
    "recipient": party,
    "sender": st.one_of(st.none(), party),
    "lines": st.lists(line, max_size=3),
    "parcels": st.integers(1, MAX_PARCELS),
    "note": text(200),
    "return": st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {"outcome": st.sampled_from(list(ReturnOutcome)).map(str)},
            optional={"reason": text(200), "rma_no": codes},
        ),
    ),
}
present = st.lists(st.sampled_from(WORDS.replace(" ", "")), min_size=1, max_size=20).map("".join)
# Half the orders have everything B1 asks for; the rest are any valid order.
packable_orders = st.fixed_dictionaries(
    {
        "order_no": codes,
        "carrier": st.sampled_from(["SF Express", "中通快递", "JD Logistics"]),
        "tracking_no": codes,
        "recipient": st.fixed_dictionaries(
            {
                "name": st.one_of(present, human.map(lambda s: "李" + s)),
                "phone": st.from_regex(r"\A1[3-9][0-9]{9}\Z"),
                "address": st.one_of(present, text(200).map(lambda s: "路" + s[:199])),
            },
            optional={"province": text(32), "city": text(32), "postcode": st.just("518057")},
        ),
        "lines": st.lists(line, min_size=1, max_size=3),
    },
    optional={
        k: v
        for k, v in OPTIONAL_FIELDS.items()
        if k not in ("carrier", "tracking_no", "recipient", "lines", "status")
    },
)
valid_orders = st.one_of(
    packable_orders, st.fixed_dictionaries({"order_no": codes}, optional=OPTIONAL_FIELDS)
)


# Values the bench could never use, put at a field: every kind of mistake the import
# must refuse (and some that are fine after all, such as a sku that is a valid code).
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "order_no": st.one_of(st.just(""), st.integers(), st.text(min_size=CODE_MAX + 1)),
    "status": st.one_of(st.just("weird"), st.just("shipped"), st.integers()),
    "order_type": st.sampled_from(["bogus", "", "NORMAL"]),
    "paid_at": st.sampled_from(["yesterday", "2026-11-23T09:15:00", "2026-11-23", 1763860500]),
    "tracking_no": st.one_of(st.text(min_size=1, max_size=30), st.just("SF 123")),
    "parcels": st.one_of(
        st.integers(-3, 0), st.integers(MAX_PARCELS + 1, 10**7), st.booleans(), st.just("2")
    ),
    "lines": st.one_of(
        st.just({"sku": "A"}),
        st.lists(
            st.fixed_dictionaries(
                {"sku": st.one_of(codes, st.text(max_size=30), st.none())},
                optional={
                    "qty": st.one_of(
                        st.integers(-2, 0),
                        st.integers(MAX_QTY + 1, 10**20),
                        st.booleans(),
                        st.just("2"),
                        st.just(1.5),
                    ),
                    "barcode": st.text(max_size=30),
                },
            ),
            min_size=1,
            max_size=2,
        ),
        st.just([{"sku": "A"}] * (MAX_LINES + 1)),
    ),
    "note": st.one_of(st.text(min_size=201, max_size=230), st.just("a\x00b")),
    "recipient": st.one_of(
        st.just("张三"),
        st.fixed_dictionaries({"phone": st.text(min_size=1, max_size=40)}),
        st.fixed_dictionaries({"name": st.text(min_size=65, max_size=70)}),
    ),
    "return": st.one_of(st.just({"outcome": "lost"}), st.just({"reason": "x"})),
}


@st.composite
def raw_orders(draw: st.DrawFn) -> dict[str, Any]:
    """An order object as a file would hold it: valid, or with a few bad values."""
    data = draw(valid_orders)
    for field in draw(st.lists(st.sampled_from(sorted(BAD_VALUES)), max_size=2, unique=True)):
        data[field] = draw(BAD_VALUES[field])
    return data


@pytest.fixture(scope="module")
def central_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = open_db(f"sqlite:///{tmp_path_factory.mktemp('contract') / 'central.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def bench_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StationStore]:
    path = tmp_path_factory.mktemp("bench") / "station.sqlite"
    store = StationStore(path, station="bench-1", clock=SystemClock())
    yield store
    store.close()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(raw=raw_orders())
def test_import_audit_and_renderer_agree(
    raw: dict[str, Any], central_db: Engine, bench_store: StationStore
) -> None:
    try:
        (imported,) = parse_json_orders(json.dumps(raw), source="generated.json")
    except OrderFileError as exc:
        imported, refusal = None, str(exc)
    try:
        wire = decode(OrdersMessage, json.dumps({"orders": [raw], "cursor": 1})).orders[0]
    except WireError:
        wire = None
    # One model: the wire takes exactly what the import takes. So an order the bench's
    # audit lets through was always accepted by the import.
    assert (imported is None) == (wire is None), refusal if imported is None else wire
    if wire is not None and not audit(wire):
        assert imported is not None
    if imported is None:
        assert refusal.startswith("generated.json: record 1")
        event("refused at import")
        return

    result = import_orders(central_db, [imported])
    reported = result.blocked.get(imported.order_no, [])
    stored = get_order(central_db, imported.order_no)
    assert stored is not None
    # Central assigns the revision (examples reuse order numbers, so it grows).
    # Central assigns the deadlines too (from paid_at, or from when it first saw it).
    assert stored.order is not None and stored.order.ship_by is not None
    imported = imported.model_copy(
        update={
            "revision": stored.revision,
            "pack_by": stored.order.pack_by,
            "ship_by": stored.order.ship_by,
        }
    )
    assert stored.order == imported
    # What the station receives, it audits with the reasons central reported and keeps.
    (received,) = _downlink(central_db, bench_store, cursor=stored.order_seq - 1, limit=1)
    assert received == imported == bench_store.find_order(imported.order_no)
    assert audit(received) == reported == stored.blocked_reasons
    event("imported, blocked" if reported else "imported, packable")

    # What import accepts, the renderers render.
    if received.tracking_no:
        _render_every_kind(received)
    else:
        assert "tracking number" in " ".join(reported)
        with pytest.raises(ValueError, match="has no tracking number"):
            render("waybill", received, size="62", printed_at=PRINTED_AT)
        received = received.model_copy(update={"tracking_no": "SF1"})
        _render_every_kind(received)
