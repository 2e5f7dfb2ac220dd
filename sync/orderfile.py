"""Order files: the JSON and CSV forms of the order object, read into :class:`Order`.

Central's ``import-orders`` and a station's ``edge orders import`` read files with the
same code, so a file one accepts the other accepts too. Formats (docs/central.md):
JSON — one order object, a list of them, or ``{"orders": [...]}``, each shaped like
``docs/examples/order.json``; CSV — one row per order line, the order's columns
repeated (or left blank) on its further rows. Anything that is not an order is refused
whole with :class:`OrderFileError`, naming file, record (or CSV line) and field.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sync.order import InvalidOrder, Order, Party, validate_order

__all__ = [
    "CSV_COLUMNS",
    "OrderFileError",
    "parse_csv_orders",
    "parse_json_orders",
    "read_orders_file",
]


class OrderFileError(ValueError):
    """An order file that cannot be imported; ``str()`` names file, record and field."""


PARTY_FIELDS = tuple(Party.model_fields)

_ORDER_SCALARS = (
    "order_no",
    "shop",
    "order_type",
    "status",
    "hold_reason",
    "paid_at",
    "promised_ship_at",
    "carrier",
    "service",
    "tracking_no",
    "parcels",
    "note",
)
_LINE_COLUMNS = {
    "sku": "sku",
    "item_name": "name",
    "item_spec": "spec",
    "qty": "qty",
    "barcode": "barcode",
}
#: Every column a CSV order file may have; only ``order_no`` is required.
CSV_COLUMNS: tuple[str, ...] = (
    *_ORDER_SCALARS,
    *(f"recipient_{f}" for f in PARTY_FIELDS),
    *(f"sender_{f}" for f in PARTY_FIELDS),
    *_LINE_COLUMNS,
)


# --------------------------------------------------------------------------- parsing


def _validate(raw: object, *, where: str) -> Order:
    if not isinstance(raw, dict):
        raise OrderFileError(f"{where}: expected an order object, got {type(raw).__name__}")
    if "order_no" not in raw:
        raise OrderFileError(f"{where}: order_no: missing")
    number = raw["order_no"]
    # The order number helps find the record, unless it is itself what is wrong.
    readable = isinstance(number, str) and number.isprintable() and 0 < len(number) <= 40
    label = f"{where} ({number})" if readable else where
    # ``revision`` is central's to assign; a file may carry it (an exported order does)
    # but it is ignored.
    body = {k: v for k, v in raw.items() if k != "revision"}
    try:
        return validate_order(body, unknown_fields="refuse")
    except InvalidOrder as exc:
        raise OrderFileError(f"{label}: {exc}") from None


def _no_duplicates(found: Sequence[tuple[str, Order]], *, source: str) -> None:
    seen: dict[str, str] = {}
    for where, order in found:
        if order.order_no in seen:
            raise OrderFileError(
                f"{where}: order_no {order.order_no} appears twice (first at "
                f"{seen[order.order_no].removeprefix(source + ': ')})"
            )
        seen[order.order_no] = where


def parse_json_orders(text: str, *, source: str) -> list[Order]:
    """Orders from JSON text: one object, a list, or ``{"orders": [...]}``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OrderFileError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if isinstance(data, dict) and "orders" in data and "order_no" not in data:
        data = data["orders"]
        if not isinstance(data, list):
            raise OrderFileError(f'{source}: "orders" must be a list of order objects')
    if isinstance(data, dict):
        found = [(f"{source}: record 1", _validate(data, where=f"{source}: record 1"))]
    elif isinstance(data, list):
        found = [
            (f"{source}: record {i}", _validate(raw, where=f"{source}: record {i}"))
            for i, raw in enumerate(data, start=1)
        ]
    else:
        raise OrderFileError(f"{source}: expected an order object or a list of them")
    _no_duplicates(found, source=source)
    return [order for _, order in found]


def parse_csv_orders(text: str, *, source: str) -> list[Order]:
    """Orders from CSV text: one row per order line (see :data:`CSV_COLUMNS`).

    The first row of an order gives its order columns; its further rows may repeat
    them or leave them blank, but may not contradict them. A row whose line columns
    are all blank adds no line (an order without lines is refused at the bench).
    """
    reader = csv.DictReader(io.StringIO(text), strict=True)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise OrderFileError(f"{source}: line 1: not valid CSV: {exc}") from None
    if not header:
        raise OrderFileError(f"{source}: empty file (expected a header row)")
    columns = [h.strip() for h in header]
    reader.fieldnames = columns
    for column in columns:
        if column not in CSV_COLUMNS:
            raise OrderFileError(f"{source}: line 1: unknown column {column!r}")
    if "order_no" not in columns:
        raise OrderFileError(f"{source}: line 1: order_no: column missing")

    raws: dict[str, dict[str, Any]] = {}
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            line_no = reader.line_num
            if None in row:
                raise OrderFileError(f"{source}: line {line_no}: more cells than columns")
            cells = {k: (v or "").strip() for k, v in row.items()}
            if not any(cells.values()):
                continue
            order_no = cells.get("order_no", "")
            if not order_no:
                raise OrderFileError(f"{source}: line {line_no}: order_no: missing")
            raw = raws.get(order_no)
            if raw is None:
                raw = raws[order_no] = {"lines": []}
                first_line[order_no] = line_no
            _merge_row(raw, cells, where=f"{source}: line {line_no}", first=first_line[order_no])
            line = {
                field: _cell(field, cells[column])
                for column, field in _LINE_COLUMNS.items()
                if cells.get(column, "")
            }
            if line:
                raw["lines"].append((line_no, line))
    except csv.Error as exc:
        raise OrderFileError(f"{source}: line {reader.line_num}: not valid CSV: {exc}") from None

    result: list[Order] = []
    for order_no, raw in raws.items():
        lines = raw.pop("lines")
        raw["lines"] = [line for _, line in lines]
        try:
            result.append(_validate(raw, where=f"{source}: line {first_line[order_no]}"))
        except OrderFileError as exc:
            # Point at the CSV line of a bad order line rather than "lines[2]".
            message = str(exc)
            for i, (line_no, _) in enumerate(lines):
                tag = f": lines[{i}]."
                if tag in message:
                    field = message.split(tag, 1)[1]
                    for column, name in _LINE_COLUMNS.items():
                        if field.startswith(name + ":"):
                            field = column + field[len(name) :]
                            break
                    raise OrderFileError(
                        f"{source}: line {line_no} ({order_no}): {field}"
                    ) from None
            raise
    return result


# CSV cells are text; these columns are whole numbers in the order object.
_NUMBER_FIELDS = frozenset({"qty", "parcels"})
_DIGITS = re.compile(r"[0-9]+")


def _cell(field: str, value: str) -> str | int:
    """A CSV cell as the order object has it: digits become a number in number columns.

    Anything else stays text, so the order model names the field (``qty: must be a
    whole number, got "1.5"``).
    """
    return int(value) if field in _NUMBER_FIELDS and _DIGITS.fullmatch(value) else value


def _merge_row(raw: dict[str, Any], cells: dict[str, str], *, where: str, first: int) -> None:
    for column, value in cells.items():
        if column in _LINE_COLUMNS or not value:
            continue
        if column.startswith(("recipient_", "sender_")):
            party, field = column.split("_", 1)
            target = raw.setdefault(party, {})
        else:
            target, field = raw, column
        value_in = _cell(field, value)
        if field in target and target[field] != value_in:
            raise OrderFileError(
                f"{where}: {column}: {value!r} contradicts {str(target[field])!r} given at "
                f"line {first} for the same order"
            )
        target[field] = value_in


def read_orders_file(path: Path) -> list[Order]:
    """Orders from a ``.json`` or ``.csv`` file (other names: sniffed from the content)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise OrderFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise OrderFileError(f"{path}: not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise OrderFileError(f"{path}: cannot read: {exc.strerror}") from None
    suffix = path.suffix.lower()
    if suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("{", "[")):
        return parse_json_orders(text, source=str(path))
    return parse_csv_orders(text, source=str(path))
