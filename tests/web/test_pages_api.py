"""The pages' JSON and their actions, for every role (packer, two supervisors, manager,
admin) over a real uvicorn: what each may see and do is checked on the server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from central.ingest import record_status
from central.reports import build_report, site_zone, week_period
from central.users import add_user, issue_token
from central.watch import WatchRules
from central.watch.context import Watch
from central.watch.exceptions import open_exception
from sync.messages import StationStatus
from tests.support.reports import NOW, WEEK, week_of_packing
from tests.web.conftest import PASSWORD

ROLES = {
    "pk": ("packer", None),
    "sup.wh": ("supervisor", "warehouse"),
    "sup.cs": ("supervisor", "customer_service"),
    "mgr": ("manager", None),
    "boss": ("admin", None),
}
VIEWERS = ["sup.wh", "sup.cs", "mgr", "boss"]


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    out = {}
    for name, (role, dept) in ROLES.items():
        add_user(engine, name, role=role, dept=dept, password=PASSWORD)
        out[name] = issue_token(engine, name)
    return out


@pytest.fixture
def as_(live_url: str, tokens: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    clients = {
        name: httpx.Client(base_url=live_url, timeout=30,
                           headers={"Authorization": f"Bearer {token}"})
        for name, token in tokens.items()
    }  # fmt: skip
    clients["nobody"] = httpx.Client(base_url=live_url, timeout=30, follow_redirects=False)
    try:
        yield clients
    finally:
        for c in clients.values():
            c.close()


def _warehouse_exception(engine: Engine, description: str = "box crushed") -> int:
    with engine.begin() as conn:
        watch = Watch(conn=conn, now=dt.datetime.now(dt.UTC), rules=WatchRules(), site="webtest")
        new = open_exception(watch, type="damaged", description=description, found_by="cs",
                             dept="warehouse")  # fmt: skip
    assert new is not None
    return new


READS = [
    "/api/reports/weekly/2026-W48",
    "/api/reports/monthly/2026-11",
    "/reports/weekly/2026-W48.csv",
    "/reports/weekly/2026-W48/daily.csv",
    "/api/equipment",
    "/api/benches",
    "/reports",
    "/equipment",
    "/benches",
    "/exceptions",
]


def test_who_may_read_what(as_: dict[str, httpx.Client]) -> None:
    for path in READS:
        for name in VIEWERS:
            assert as_[name].get(path).status_code == 200, (name, path)
        refused = as_["pk"].get(path)
        assert refused.status_code == 403 and "packer" in refused.json()["detail"], path
        anonymous = as_["nobody"].get(path)
        expected = 303 if path in PAGES or path.endswith(".csv") else 401
        assert anonymous.status_code == expected, path


def test_report_json_and_csv_are_the_cli_s_numbers(
    as_: dict[str, httpx.Client], engine: Engine
) -> None:
    week_of_packing(engine)
    got = as_["mgr"].get(f"/api/reports/weekly/{WEEK}").json()
    same = build_report(engine, week_period(WEEK, site_zone("Asia/Shanghai")), now=NOW,
                        departments=["customer_service", "logistics", "operations"])  # fmt: skip
    assert got["summary"] == same.summary and got["tables"] == same.as_json()["tables"]
    # The fixture's own shipment (no deadline) besides the week of packing.
    assert got["summary"]["orders_shipped"] == 5 and got["summary"]["on_time_rate"] == 0.75
    assert got["timezone"] == "Asia/Shanghai"
    csv_all = as_["mgr"].get(f"/reports/weekly/{WEEK}.csv")
    assert csv_all.headers["content-type"].startswith("text/csv")
    assert 'filename="packline-weekly-2026-W48.csv"' in csv_all.headers["content-disposition"]
    assert "Timeout rate per department" in csv_all.text
    one = as_["mgr"].get(f"/reports/weekly/{WEEK}/exceptions_by_type.csv").text.splitlines()
    assert one[0] == "type,opened,major,resolved,open_at_end" and "shipping_delay,2,0,1,1" in one
    missing = as_["mgr"].get(f"/reports/weekly/{WEEK}/nope.csv")
    assert missing.status_code == 404 and "there are summary" in missing.json()["detail"]
    bad = as_["mgr"].get("/api/reports/weekly/2026-48")
    assert bad.status_code == 422 and "YYYY-Www" in bad.json()["detail"]
    page = as_["mgr"].get("/reports", params={"week": WEEK}).text
    assert 'id="kpi-on-time">75.0%<' in page and "/static/vendor/chart.umd.js" in page
    assert as_["mgr"].get("/reports", params={"week": "W48"}).status_code == 422


PAGES = ["/reports", "/equipment", "/benches", "/exceptions"]

STEPS = [
    ("ack", {}),
    ("plan", {"text": "reship today"}),
    ("assign", {"to": "wang.fang"}),
    ("resolve", {"cause": "crushed", "action": "reshipped", "outcome": "customer has it"}),
    ("close", {}),
]


@pytest.mark.parametrize("name", list(ROLES))
def test_every_step_by_every_role(as_: dict[str, httpx.Client], engine: Engine, name: str) -> None:
    xid = _warehouse_exception(engine)
    client = as_[name]
    allowed = name in ("sup.wh", "mgr", "boss")
    for step, body in STEPS:
        if step == "resolve" and allowed:
            no_report = client.post(f"/api/exceptions/{xid}/resolve", json={"cause": "crushed"})
            assert no_report.status_code == 409
            assert "action, outcome missing" in no_report.json()["detail"]
        done = client.post(f"/api/exceptions/{xid}/{step}", json=body)
        if allowed:
            assert done.status_code == 200, (step, done.text)
        else:
            assert done.status_code == 403, (step, done.text)
            words = "packer" if name == "pk" else "may not act for department warehouse"
            assert words in done.json()["detail"]
    after = as_["boss"].get(f"/api/exceptions/{xid}").json()
    if allowed:
        assert after["state"] == "closed"
        entries = [(h["entry"], h["by"]) for h in after["history"]]
        assert entries[1:] == [(e, name) for e in ("acknowledged", "plan", "assigned",
                                                    "resolved", "closed")]  # fmt: skip
        assert after["history"][3]["text"] == "assigned to warehouse (wang.fang)"
    else:
        assert after["state"] == "open" and len(after["history"]) == 1


def test_acting_as_someone_else_is_for_admins_only(
    as_: dict[str, httpx.Client], engine: Engine
) -> None:
    xid = _warehouse_exception(engine)
    other = as_["sup.wh"].post(f"/api/exceptions/{xid}/ack", json={"by": "li.wei"})
    assert other.status_code == 403 and "may act only as" in other.json()["detail"]
    mine = as_["sup.wh"].post(f"/api/exceptions/{xid}/ack", json={"by": "sup.wh"})
    assert mine.json()["acknowledged_by"] == "sup.wh"
    yid = _warehouse_exception(engine, "second")
    for_li = as_["boss"].post(f"/api/exceptions/{yid}/ack", json={"by": "li.wei"})
    assert for_li.json()["acknowledged_by"] == "li.wei"


def test_assigning_to_another_department_hands_it_over(
    as_: dict[str, httpx.Client], engine: Engine
) -> None:
    xid = _warehouse_exception(engine)
    moved = as_["sup.wh"].post(f"/api/exceptions/{xid}/assign", json={"dept": "customer_service"})
    assert moved.json()["dept"] == "customer_service"
    assert moved.json()["history"][-1]["text"] == ("assigned to customer_service, was warehouse")
    assert as_["sup.wh"].post(f"/api/exceptions/{xid}/ack", json={}).status_code == 403
    assert as_["sup.cs"].post(f"/api/exceptions/{xid}/ack", json={}).status_code == 200
    same = as_["sup.cs"].post(f"/api/exceptions/{xid}/assign", json={})
    assert same.status_code == 409 and "name another department or a person" in same.text
    bad = as_["mgr"].post(f"/api/exceptions/{xid}/assign", json={"dept": "Sales Dept"})
    assert bad.status_code == 409 and "dept must be lower-case" in bad.json()["detail"]
    assert as_["mgr"].post("/api/exceptions/999/ack", json={}).status_code == 404


def test_alert_acks_and_opening_follow_the_roles(
    as_: dict[str, httpx.Client], engine: Engine
) -> None:
    xid = _warehouse_exception(engine)
    body = {"exception_id": xid, "by": "sup.cs"}
    assert as_["sup.cs"].post("/api/alerts/ack", json=body).status_code == 403
    assert as_["pk"].post("/api/alerts/ack", json={**body, "by": "pk"}).status_code == 403
    ok = as_["sup.wh"].post("/api/alerts/ack", json={**body, "by": "sup.wh"})
    assert ok.status_code == 200 and ok.json()["acknowledged"]
    new = {"type": "damaged", "description": "dented"}
    # Anyone logged in may report one, a packer too; acting on it is another matter.
    reported = as_["pk"].post("/api/exceptions", json=new)
    assert reported.status_code == 201 and reported.json()["found_by"] == "pk"
    assert as_["pk"].post(f"/api/exceptions/{reported.json()['id']}/ack").status_code == 403
    opened = as_["sup.cs"].post("/api/exceptions", json=new)
    assert opened.status_code == 201 and opened.json()["found_by"] == "sup.cs"


def test_maintenance_entries_by_role(as_: dict[str, httpx.Client], engine: Engine) -> None:
    status = StationStatus(
        station="bench-01", online=True, printer="ready", printer_model="QL-820NWB",
        printer_serial="tcp://10.0.0.5:9100",
    )  # fmt: skip
    record_status(engine, status, site="webtest")
    entry = {"station": "bench-01", "device": "printer", "text": "<b>cleaned</b>"}
    assert as_["pk"].post("/api/equipment/notes", json=entry).status_code == 403
    for name in VIEWERS:
        done = as_[name].post("/api/equipment/notes", json=entry)
        assert done.status_code == 201 and done.json()["by"] == name
    refused = as_["mgr"].post("/api/equipment/notes", json={**entry, "station": "bench-77"})
    assert refused.status_code == 422 and "no station 'bench-77'" in refused.json()["detail"]
    (printer,) = [d for d in as_["mgr"].get("/api/equipment").json()["equipment"]
                  if d["device"] == "printer"]  # fmt: skip
    assert [n["by"] for n in printer["notes"]] == ["boss", "mgr", "sup.cs", "sup.wh"]
    page = as_["mgr"].get("/equipment").text
    assert "&lt;b&gt;cleaned&lt;/b&gt;" in page and "<b>cleaned</b>" not in page
