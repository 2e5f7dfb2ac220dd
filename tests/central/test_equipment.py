"""The equipment ledger (A4): devices from station reports, faults, maintenance entries."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from central.equipment import EquipmentRefused, add_note, equipment_ledger, equipment_notes
from central.ingest import record_status
from sync.messages import StationStatus
from tests.support.watch import bench_event

T0 = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
M = dt.timedelta(minutes=1)


def _status(engine: Engine, at: dt.datetime, **fields: object) -> None:
    values: dict[str, object] = {
        "station": "bench-01", "online": True, "printer": "ready", "scanner": "ready",
        "printer_model": "QL-820NWB", "printer_serial": "tcp://10.0.0.5:9100",
        "scanner_device": "/dev/input/by-id/usb-Honeywell-event-kbd", "labels_left": 180,
        "label_size": "62", "at_wall": at.timestamp(), **fields,
    }  # fmt: skip
    record_status(engine, StationStatus.model_validate(values), site="wh1", received_at=at)


def _device_state(engine: Engine, at: dt.datetime, device: str, state: str, **more: str) -> None:
    bench_event(engine, "bench-01", "device.state", at=at, device=device, state=state, **more)


def test_devices_faults_and_label_stock(engine: Engine) -> None:
    _status(engine, T0)
    _device_state(engine, T0 + 10 * M, "printer", "no media", detail="roll empty")
    _status(engine, T0 + 10 * M, printer="no media", labels_left=0)
    _device_state(engine, T0 + 25 * M, "printer", "ready")
    _status(engine, T0 + 25 * M, labels_left=30)
    _device_state(engine, T0 + 40 * M, "scanner", "gone")
    ledger = equipment_ledger(engine, now=T0 + H(1), labels_low=50)
    printer, scanner = ledger
    assert (printer["device"], printer["model"], printer["serial"]) == (
        "printer", "QL-820NWB", "tcp://10.0.0.5:9100",
    )  # fmt: skip
    assert printer["first_seen"] == T0.isoformat() and printer["in_use"]
    assert printer["state"] == "ready" and printer["labels_left"] == 30
    assert printer["labels_low"] == 50 and printer["labels_low_now"] is True
    assert printer["fault_count"] == 1
    (fault,) = printer["faults"]
    assert (fault["state"], fault["detail"], fault["lasted_s"]) == ("no media", "roll empty", 900)
    assert scanner["device_id"] == "/dev/input/by-id/usb-Honeywell-event-kbd"
    assert [f["state"] for f in scanner["faults"]] == ["gone"]
    assert scanner["faults"][0]["until"] is None  # still gone


def H(hours: float) -> dt.timedelta:
    return dt.timedelta(hours=hours)


def test_a_replaced_printer_is_a_second_device(engine: Engine) -> None:
    _status(engine, T0)
    _device_state(engine, T0 + 5 * M, "printer", "offline")
    _status(engine, T0 + H(2), printer_model="ZD421", printer_serial="zpl+tcp://10.0.0.9:9100")
    _device_state(engine, T0 + H(3), "printer", "cover open")
    printers = [d for d in equipment_ledger(engine, now=T0 + H(4)) if d["device"] == "printer"]
    assert [(p["model"], p["in_use"], p["fault_count"]) for p in printers] == [
        ("ZD421", True, 1),
        ("QL-820NWB", False, 1),
    ]
    assert printers[1]["state"] == "removed" and printers[1]["labels_left"] is None
    assert printers[0]["first_seen"] == (T0 + H(2)).isoformat()


def test_an_offline_station_s_printer_is_unknown_not_ready(engine: Engine) -> None:
    _status(engine, T0)
    record_status(engine, StationStatus(station="bench-01", online=False), site="wh1",
                  received_at=T0 + M)  # fmt: skip
    (printer, _scanner) = equipment_ledger(engine, now=T0 + H(1))
    assert printer["state"] == "unknown" and printer["online"] is False


def test_maintenance_entries_are_kept_and_append_only(engine: Engine) -> None:
    _status(engine, T0)
    now = T0 + H(5)
    note = add_note(engine, station="bench-01", device="printer", text="  cleaned   the head ",
                    by="admin.wu", kind="cleaning", now=now)  # fmt: skip
    assert note["text"] == "cleaned the head" and note["device_id"] == "tcp://10.0.0.5:9100"
    add_note(engine, station="bench-01", device="printer", text="set up on bench 1",
             by="admin.wu", kind="installed", at=T0 - H(24 * 30), now=now)  # fmt: skip
    (printer, scanner) = equipment_ledger(engine, now=now)
    assert [n["kind"] for n in printer["notes"]] == ["cleaning", "installed"]
    assert printer["installed_at"] == (T0 - H(24 * 30)).isoformat()
    assert scanner["notes"] == [] and scanner["installed_at"] == T0.isoformat()
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(equipment_notes.update().values(text="rewritten"))
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(equipment_notes.delete())


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"device": "mouse"}, "device must be printer or scanner"),
        ({"kind": "polish"}, "kind must be one of"),
        ({"text": "   "}, "needs a text"),
        ({"by": ""}, "needs who did it"),
        ({"station": "bench-77"}, "no printer known at station 'bench-77'"),
        ({"device_id": "QL-700"}, "has no printer 'QL-700'"),
        ({"at": T0 + H(48)}, "in the future"),
    ],
)
def test_refused_entries_say_why(engine: Engine, fields: dict[str, object], words: str) -> None:
    _status(engine, T0)
    args: dict[str, object] = {"station": "bench-01", "device": "printer", "text": "fixed",
                               "by": "admin", "now": T0 + H(1), **fields}  # fmt: skip
    with pytest.raises(EquipmentRefused, match=words):
        add_note(engine, **args)  # type: ignore[arg-type]
