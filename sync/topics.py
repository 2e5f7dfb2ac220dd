"""MQTT topics of wire version 1 (DESIGN.md, "Sync")."""

from __future__ import annotations

__all__ = [
    "ack",
    "alert_ack",
    "alert_tree",
    "alerts",
    "events",
    "orders",
    "station_of",
    "status",
    "subscription",
]

ROOT = "packline/v1"


def _station(site: str, station: str, leaf: str) -> str:
    for part in (site, station):
        if not part or any(c in part for c in "+#/"):
            raise ValueError(f"invalid site or station name for a topic: {part!r}")
    return f"{ROOT}/{site}/stations/{station}/{leaf}"


def events(site: str, station: str) -> str:
    """Edge → central: batches of events (QoS 1)."""
    return _station(site, station, "events")


def ack(site: str, station: str) -> str:
    """Central → edge: highest contiguous seq stored (QoS 1)."""
    return _station(site, station, "ack")


def status(site: str, station: str) -> str:
    """Edge → central: health, retained; the LWT marks the station offline."""
    return _station(site, station, "status")


def orders(site: str, station: str) -> str:
    """Central → edge: order upserts with a revision (QoS 1)."""
    return _station(site, station, "orders")


def alerts(site: str, dept: str, severity: str) -> str:
    """Central → people: alerts by department and severity (QoS 1)."""
    return f"{ROOT}/{site}/alerts/{dept}/{severity}"


def alert_ack(site: str) -> str:
    """People → central: a supervisor acknowledges an alert (QoS 1)."""
    return f"{ROOT}/{site}/alerts/ack"


def alert_tree(site: str) -> str:
    """Wildcard for every alert of ``site`` and their acknowledgements."""
    return f"{ROOT}/{site}/alerts/#"


def subscription(site: str, leaf: str) -> str:
    """Wildcard for ``leaf`` of every station of ``site`` (``+`` for every site)."""
    return f"{ROOT}/{site}/stations/+/{leaf}"


def station_of(topic: str) -> tuple[str, str, str]:
    """``(site, station, leaf)`` of a station topic; ``ValueError`` otherwise."""
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "packline" or parts[1] != "v1" or parts[3] != "stations":
        raise ValueError(f"not a station topic: {topic}")
    return parts[2], parts[4], parts[5]
