"""Every action × every role over real HTTP, table-driven (docs/web.md, "Roles").

Each role holds an API token; the exception steps are tried on a warehouse exception
(``damaged`` goes to the warehouse), so a supervisor of customer service is refused
where the warehouse's own supervisor is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine

from central.users import add_user, issue_token
from tests.support.watch import make_order, put_orders
from tests.web.conftest import PASSWORD

USERS = {
    "packer": ("packer", None),
    "sup-wh": ("supervisor", "warehouse"),
    "sup-cs": ("supervisor", "customer_service"),
    "manager": ("manager", None),
    "admin": ("admin", None),
}
ROLES = list(USERS)
STEP = {"packer": 403, "sup-wh": 200, "sup-cs": 403, "manager": 200, "admin": 200}
EVERYONE = dict.fromkeys(ROLES, 200)
ADMIN_ONLY = {**dict.fromkeys(ROLES, 403), "admin": 200}
SEES_CUSTOMERS = {"packer": False, "sup-wh": False, "sup-cs": True, "manager": True, "admin": True}


@pytest.fixture
def clients(live_url: str, engine: Engine) -> Iterator[dict[str, httpx.Client]]:
    put_orders(engine, make_order("PDD-R1"))
    made = {}
    for name, (role, dept) in USERS.items():
        add_user(engine, name, role=role, dept=dept, password=PASSWORD)
        made[name] = httpx.Client(
            base_url=live_url,
            timeout=30,
            headers={"Authorization": f"Bearer {issue_token(engine, name)}"},
        )
    try:
        yield made
    finally:
        for c in made.values():
            c.close()


def _exception(admin: httpx.Client, upto: tuple[str, ...] = ()) -> int:
    """A new warehouse exception, taken by the admin through ``upto``'s steps."""
    made = admin.post("/api/exceptions", json={"type": "damaged", "description": "crushed"})
    assert made.status_code == 201, made.text
    xid = int(made.json()["id"])
    bodies = {"ack": {}, "plan": {"text": "repack"}, "resolve": REPORT}
    for step in upto:
        done = admin.post(f"/api/exceptions/{xid}/{step}", json=bodies[step])
        assert done.status_code == 200, done.text
    return xid


REPORT = {"cause": "dropped", "action": "repacked", "outcome": "shipped"}

Action = Callable[[dict[str, httpx.Client], str], httpx.Response]


def _step(step: str, before: tuple[str, ...], body: dict[str, str]) -> Action:
    def run(c: dict[str, httpx.Client], who: str) -> httpx.Response:
        xid = _exception(c["admin"], before)
        return c[who].post(f"/api/exceptions/{xid}/{step}", json=body)

    return run


def _get(path: str) -> Action:
    return lambda c, who: c[who].get(path)


ACTIONS: dict[str, tuple[Action, dict[str, int]]] = {
    "read floor": (_get("/api/floor"), EVERYONE),
    "read stations": (_get("/api/stations"), EVERYONE),
    "read orders board": (_get("/api/orders/board"), EVERYONE),
    "search orders": (_get("/api/orders?q=PDD-R1"), EVERYONE),
    "read an order": (_get("/api/orders/PDD-R1"), EVERYONE),
    "read exceptions": (_get("/api/exceptions"), EVERYONE),
    "read deadlines": (_get("/api/deadlines"), EVERYONE),
    "read alerts": (_get("/api/alerts"), EVERYONE),
    "who am I": (_get("/api/me"), EVERYONE),
    "report an exception": (
        lambda c, who: c[who].post(
            "/api/exceptions", json={"type": "damaged", "description": "box wet"}
        ),
        {k: 201 for k in ROLES},
    ),
    "acknowledge": (_step("ack", (), {}), STEP),
    "post a plan": (_step("plan", ("ack",), {"text": "repack it"}), STEP),
    "resolve": (_step("resolve", ("ack", "plan"), REPORT), STEP),
    "close": (_step("close", ("ack", "plan", "resolve"), {}), STEP),
    "acknowledge its alert": (
        lambda c, who: c[who].post(
            "/api/alerts/ack", json={"exception_id": _exception(c["admin"]), "by": who}
        ),
        STEP,
    ),
    "retire a station": (
        lambda c, who: c[who].post("/api/stations/bench-02/retire"),
        ADMIN_ONLY,
    ),
}


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_action_by_role(clients: dict[str, httpx.Client], action: str, who: str) -> None:
    run, expected = ACTIONS[action]
    got = run(clients, who)
    assert got.status_code == expected[who], f"{action} by {who}: {got.status_code} {got.text}"


@pytest.mark.parametrize("who", ROLES)
def test_customer_data_follows_the_role(clients: dict[str, httpx.Client], who: str) -> None:
    order = clients[who].get("/api/orders/PDD-R1").json()
    found = clients[who].get("/api/orders", params={"q": "PDD-R1"}).json()["orders"][0]
    for shown in (order["recipient"], found["recipient"]):
        if SEES_CUSTOMERS[who]:
            assert shown["phone"] == "13812345678" and shown["name"] == "张三"
        else:
            assert shown["phone"] == "138****5678" and shown["name"] == "张*"
            assert "科技园 8 号" not in str(shown)


def test_a_step_is_recorded_as_the_user_and_only_an_admin_names_another(
    clients: dict[str, httpx.Client],
) -> None:
    xid = _exception(clients["admin"])
    as_other = clients["sup-wh"].post(f"/api/exceptions/{xid}/ack", json={"by": "sup-cs"})
    assert as_other.status_code == 403 and "may act only as sup-wh" in as_other.json()["detail"]
    done = clients["sup-wh"].post(f"/api/exceptions/{xid}/ack", json={})
    assert done.json()["acknowledged_by"] == "sup-wh"
    xid = _exception(clients["admin"])
    named = clients["admin"].post(f"/api/exceptions/{xid}/ack", json={"by": "sup-wh"})
    assert named.json()["acknowledged_by"] == "sup-wh"


def test_a_retired_station_leaves_the_floor(clients: dict[str, httpx.Client]) -> None:
    admin = clients["admin"]
    assert "bench-02" in {t["station"] for t in admin.get("/api/floor").json()["stations"]}
    assert admin.post("/api/stations/bench-02/retire").json() == {"retired": "bench-02"}
    assert "bench-02" not in {t["station"] for t in admin.get("/api/floor").json()["stations"]}
    assert admin.post("/api/stations/nowhere/retire").status_code == 404
