"""Order import: JSON and CSV files, revisions and order_seq, malformed files, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.db import open_db, orders
from central.orders import (
    CSV_COLUMNS,
    OrderFileError,
    blocked_orders,
    current_order_seq,
    get_order,
    import_orders,
    orders_after,
    read_orders_file,
)
from packline.cli import main
from sync.order import Order

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = json.loads((REPO / "docs/examples/order.json").read_text(encoding="utf-8"))


def order(no: str, **changes: Any) -> dict[str, Any]:
    return {**EXAMPLE, "order_no": no, **changes}


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def stored(engine: Engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(orders.c.order_no, orders.c.order_seq, orders.c.revision))
        return {r.order_no: (r.order_seq, r.revision) for r in rows}


@pytest.mark.parametrize("shape", ["object", "list", "wrapped"])
def test_json_shapes(tmp_path: Path, shape: str) -> None:
    data: object = {
        "object": order("A"),
        "list": [order("A"), order("B")],
        "wrapped": {"orders": [order("A"), order("B")]},
    }[shape]
    found = read_orders_file(write(tmp_path / "o.json", data))
    assert [o.order_no for o in found] == (["A"] if shape == "object" else ["A", "B"])
    assert found[0].recipient.phone == "13812345678"
    assert found[0].lines[0].qty == 2


def test_revisions_and_order_seq(engine: Engine) -> None:
    a, b = Order.model_validate(order("A")), Order.model_validate(order("B"))
    done = import_orders(engine, [a, b])
    assert (done.added, done.order_seq) == (["A", "B"], 2)
    assert stored(engine) == {"A": (1, 1), "B": (2, 1)}

    again = import_orders(engine, [a, b])  # identical: nothing changes, nothing is sent
    assert (again.unchanged, again.order_seq) == (["A", "B"], 2)
    assert stored(engine) == {"A": (1, 1), "B": (2, 1)}

    held = Order.model_validate(order("A", status="held", hold_reason="address change"))
    changed = import_orders(engine, [held, b])
    assert (changed.changed, changed.unchanged) == (["A"], ["B"])
    assert stored(engine) == {"A": (3, 2), "B": (2, 1)}
    assert current_order_seq(engine) == 3

    pending = orders_after(engine, cursor=1)
    assert [(seq, o.order_no, o.revision, o.status) for seq, o in pending] == [
        (2, "B", 1, "ready"),
        (3, "A", 2, "held"),
    ]
    assert pending[1][1].hold_reason == "address change"
    assert orders_after(engine, cursor=3) == []


def test_a_revision_in_the_file_is_ignored(sqlite_engine: Engine) -> None:
    import_orders(sqlite_engine, [Order.model_validate(order("A", revision=9))])
    assert stored(sqlite_engine) == {"A": (1, 1)}


CSV_HEADER = (
    "order_no,shop,carrier,tracking_no,recipient_name,recipient_phone,recipient_address,"
    "sku,item_name,qty,barcode\n"
)
CSV_GOOD = (
    CSV_HEADER
    + """\
PDD-1,pdd-main,SF Express,SF001,张三,13812345678,"深圳市, 南山区",TEE-BLK-M,纯棉T恤,2,6901234567892
PDD-1,,,,,,,CAP-RED,棒球帽,1,6901234567908
PDD-2,pdd-main,YTO,YT002,李四,13900001111,上海市,MUG-1,Mug,3,
"""
)


def test_csv_rows_are_order_lines(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("\ufeff" + CSV_GOOD, encoding="utf-8")  # Excel writes a BOM
    found = read_orders_file(path)
    assert [o.order_no for o in found] == ["PDD-1", "PDD-2"]
    one = found[0]
    assert (one.carrier, one.tracking_no, one.recipient.name) == ("SF Express", "SF001", "张三")
    assert one.recipient.address == "深圳市, 南山区"
    assert [(line.sku, line.qty) for line in one.lines] == [("TEE-BLK-M", 2), ("CAP-RED", 1)]
    assert found[1].lines[0].barcode == ""


def test_every_documented_csv_column_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    values = {c: "" for c in CSV_COLUMNS} | {"order_no": "X", "sku": "S", "qty": "1"}
    values |= {"parcels": "2", "recipient_postcode": "518057", "sender_name": "Shop"}
    path.write_text(",".join(values) + "\n" + ",".join(values.values()) + "\n")
    (found,) = read_orders_file(path)
    assert (found.parcels, found.recipient.postcode, found.sender.name) == (2, "518057", "Shop")
    documented = (REPO / "docs/central.md").read_text(encoding="utf-8")
    for column in CSV_COLUMNS:  # the docs list every column the code accepts
        assert f"`{column}`" in documented, column


BAD_FILES: list[tuple[str, str, list[str]]] = [
    ("bad.json", '{"order_no": "A", "lines": [', ["bad.json", "not valid JSON", "line 1"]),
    ("nono.json", json.dumps([order("A"), {"shop": "x"}]), ["nono.json", "record 2", "order_no"]),
    (
        "qty.json",
        json.dumps([order("A", lines=[{"sku": "S", "qty": "two"}])]),
        ["qty.json", "record 1 (A)", "lines[0].qty"],
    ),
    (
        "zero.json",
        json.dumps(order("A", lines=[{"sku": "S", "qty": 0}])),
        ["zero.json", "record 1 (A)", "lines[0].qty", "at least 1"],
    ),
    ("typo.json", json.dumps(order("A", tracking_number="x")), ["record 1 (A)", "tracking_number"]),
    ("twice.json", json.dumps([order("A"), order("A")]), ["record 2", "appears twice", "record 1"]),
    ("qty.csv", "order_no,sku,qty\nA,S1,1\nA,S2,1.5\n", ["qty.csv", "line 3 (A)", "qty"]),
    ("noorder.csv", "order_no,sku,qty\nA,S1,1\n,S2,1\n", ["noorder.csv", "line 3", "order_no"]),
    ("column.csv", "order_no,sku,quantity\nA,S1,1\n", ["column.csv", "line 1", "'quantity'"]),
    (
        "clash.csv",
        "order_no,carrier,sku,qty\nA,SF,S1,1\nA,YTO,S2,1\n",
        ["clash.csv", "line 3", "carrier", "line 2"],
    ),
]


@pytest.mark.parametrize(("name", "content", "says"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_malformed_files_name_file_record_and_field(
    tmp_path: Path, name: str, content: str, says: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(OrderFileError) as info:
        read_orders_file(path)
    message = str(info.value)
    assert "\n" not in message
    for part in says:
        assert part in message, (part, message)


# What import used to accept although the bench would always refuse it: each is now
# refused at import, naming the record and the field.
ISSUE_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "non-ascii-tracking",
        {"tracking_no": "中通78512345"},
        "tracking_no: must be ASCII letters, digits and marks without spaces (it is printed as a "
        'barcode), got "中通78512345"',
    ),
    ("barcode-only-line", {"lines": [{"barcode": "6901234567892"}]}, "lines[0].sku: missing"),
    (
        "status",
        {"status": "weird"},
        "status: must be one of 'ready', 'held', 'address_change', "
        "'cancelled' or 'refunded', got \"weird\"",
    ),
    (
        "order-type",
        {"order_type": "bogus"},
        "order_type: must be one of 'normal' or 'presale', got \"bogus\"",
    ),
    (
        "paid-at",
        {"paid_at": "yesterday"},
        "paid_at: must be an ISO 8601 time with its zone, "
        'e.g. 2026-11-23T09:15:00+08:00, got "yesterday"',
    ),
    (
        "qty-bool",
        {"lines": [{"sku": "S", "qty": True}]},
        "lines[0].qty: must be a whole number, got true",
    ),
    (
        "qty-huge",
        {"lines": [{"sku": "S", "qty": 10**20}]},
        "lines[0].qty: must be at most 999, got 100000000000000000000",
    ),
    ("parcels", {"parcels": 1_000_000}, "parcels: must be at most 50, got 1000000"),
]


@pytest.mark.parametrize(("_", "change", "says"), ISSUE_CASES, ids=[c[0] for c in ISSUE_CASES])
def test_what_the_bench_would_refuse_is_refused_at_import(
    tmp_path: Path, _: str, change: dict[str, Any], says: str
) -> None:
    path = write(tmp_path / "o.json", [order("A"), order("B", **change)])
    with pytest.raises(OrderFileError) as info:
        read_orders_file(path)
    assert str(info.value) == f"{path}: record 2 (B): {says}"


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("B,S,true,1", 'line 3 (B): qty: must be a whole number, got "true"'),
        ("B,S,100000000000000000000,1", "line 3 (B): qty: must be at most 999, got "),
        ("B,S,1,1000000", "line 3 (B): parcels: must be at most 50, got 1000000"),
        ("B,,1,1", "line 3 (B): sku: missing"),
    ],
)
def test_csv_cells_follow_the_same_rules(tmp_path: Path, row: str, says: str) -> None:
    path = tmp_path / "o.csv"
    path.write_text(f"order_no,sku,qty,parcels\nA,S,1,1\n{row}\n", encoding="utf-8")
    with pytest.raises(OrderFileError) as info:
        read_orders_file(path)
    assert str(info.value).startswith(f"{path}: {says}")


def test_optional_fields_are_optional_at_import(tmp_path: Path) -> None:
    no_sender = {k: v for k, v in order("A").items() if k != "sender"}
    no_qty = order("B", lines=[{"sku": "TEE-BLK-M"}])
    found = read_orders_file(write(tmp_path / "o.json", [no_sender, no_qty]))
    assert found[0].sender is None and found[1].lines[0].qty == 1
    ret = read_orders_file(REPO / "docs/examples/order-return.json")[0]
    assert ret.return_info is not None and ret.return_info.outcome == "damaged"


def test_blocked_orders_are_imported_with_their_reasons(engine: Engine) -> None:
    ready = Order.model_validate(order("A"))
    waiting = Order.model_validate(order("B", tracking_no=""))
    held = Order.model_validate(order("C", status="held", hold_reason="buyer moved", lines=[]))
    done = import_orders(engine, [ready, waiting, held])
    assert done.blocked == {
        "B": ["missing tracking number"],
        "C": ["order is on hold: buyer moved", "no order lines"],
    }
    assert done.warnings() == [
        "warning: B cannot be packed yet: missing tracking number",
        "warning: C cannot be packed yet: order is on hold: buyer moved; no order lines",
    ]
    assert done.summary() == "3 added, 0 changed, 0 unchanged, 2 not packable yet (order seq now 3)"
    a, b = get_order(engine, "A"), get_order(engine, "B")
    assert a is not None and not a.blocked and a.order is not None
    # Central adds the deadlines it computed (docs/central.md, "Deadlines").
    assert a.order.pack_by is not None and a.order.ship_by is not None
    assert a.order.model_copy(update={"pack_by": None, "ship_by": None}) == ready
    assert b is not None and b.blocked_reasons == ["missing tracking number"]
    assert [(s.order_no, s.blocked_reasons) for s in blocked_orders(engine)] == [
        ("B", ["missing tracking number"]),
        ("C", ["order is on hold: buyer moved", "no order lines"]),
    ]
    assert get_order(engine, "nope") is None
    # Blocked orders go to the stations too: the bench says why it refuses them.
    assert [o.order_no for _, o in orders_after(engine, cursor=0)] == ["A", "B", "C"]

    # The carrier's tracking number arrives: the order changes and is packable.
    again = import_orders(engine, [Order.model_validate(order("B", tracking_no="SF77"))])
    assert again.changed == ["B"] and again.blocked == {}
    b = get_order(engine, "B")
    assert b is not None and b.revision == 2 and not b.blocked
    assert [s.order_no for s in blocked_orders(engine)] == ["C"]
    # An identical re-import still reports what is blocked, and sends nothing.
    same = import_orders(engine, [held])
    assert same.unchanged == ["C"] and same.warnings() and same.order_seq == 4


def test_cli_malformed_file_exits_2_with_one_line_and_imports_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    good = write(tmp_path / "good.json", [order("A")])
    assert main(["central", "import-orders", str(good), "--db-url", url]) == 0
    # the first order is fine, the second is not: the file is all or nothing
    bad = write(tmp_path / "bad.json", [order("B"), order("C", lines=[{"sku": "S", "qty": "x"}])])
    assert main(["central", "import-orders", str(bad), "--db-url", url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "bad.json" in err and "record 2 (C)" in err and "qty" in err
    engine = open_db(url)
    try:
        assert set(stored(engine)) == {"A"}
    finally:
        engine.dispose()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "packline", "central", "import-orders", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_subprocess_good_then_malformed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    good = tmp_path / "orders.csv"
    good.write_text(CSV_GOOD, encoding="utf-8")
    done = run_cli(str(good), "--db-url", url)
    assert done.returncode == 0, done.stderr
    assert "2 added" in done.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text(CSV_GOOD + "PDD-3,,,,,,,X,,many,\n", encoding="utf-8")
    done = run_cli(str(bad), "--db-url", url)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "bad.csv: line 5 (PDD-3): qty" in done.stderr
    engine = open_db(url)
    try:
        assert set(stored(engine)) == {"PDD-1", "PDD-2"}
    finally:
        engine.dispose()


def test_cli_unreachable_database_is_one_line(tmp_path: Path) -> None:
    from packline.devbroker import free_port

    good = write(tmp_path / "good.json", order("A"))
    done = run_cli(str(good), "--db-url", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "cannot open database" in done.stderr


def test_cli_warns_once_per_order_that_cannot_be_packed_yet(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    path = write(
        tmp_path / "orders.json",
        [order("A"), order("B", tracking_no=""), order("C", status="cancelled")],
    )
    done = run_cli(str(path), "--db-url", url)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"{path}: warning: B cannot be packed yet: missing tracking number",
        f"{path}: warning: C cannot be packed yet: order was cancelled",
    ]
    assert done.stdout == (
        f"{path}: 3 added, 0 changed, 0 unchanged, 2 not packable yet (order seq now 3); "
        f"database {url}\n"
    )
    engine = open_db(url)
    try:
        assert [(s.order_no, s.blocked_reasons) for s in blocked_orders(engine)] == [
            ("B", ["missing tracking number"]),
            ("C", ["order was cancelled"]),
        ]
    finally:
        engine.dispose()


def test_cli_bad_value_is_one_line_naming_record_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "orders.json", [order("A"), order("PDD-7", parcels=1_000_000)])
    done = run_cli(str(path), "--db-url", f"sqlite:///{tmp_path / 'central.db'}")
    assert done.returncode == 2
    assert done.stderr == (
        f"packline: error: nothing imported: {path}: record 2 (PDD-7): parcels: must be at "
        "most 50, got 1000000\n"
    )
