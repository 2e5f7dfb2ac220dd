"""``/metrics`` for Prometheus (docs/web.md, "Monitoring").

Read from the database at each scrape, so the numbers are the same whichever process
wrote them (several workers, a tick run by hand): events received (Prometheus takes
the ingest rate from it), backlog and the oldest unsent record's age per station, the
events stored that the watch has not reacted to yet per station, open exceptions by
severity, alerts sent, dead letters by reason; the watch's tick
durations come from the serving process's own watch thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, events
from central.deadletters import dead_letter_counts
from central.views import list_stations
from central.watch.reactor import waiting
from central.watch.tables import alerts, exceptions

__all__ = ["CONTENT_TYPE", "TickStats", "metrics_text"]

OPEN_STATES = ("open", "acknowledged", "plan_posted")


@dataclass(frozen=True)
class TickStats:
    """The watch thread's ticks so far: how many, their total and last duration (s)."""

    count: int
    seconds_total: float
    last_seconds: float | None


class _Central(Collector):
    def __init__(self, engine: Engine, site: str, ticks: Callable[[], TickStats] | None) -> None:
        self.engine = engine
        self.site = site
        self.ticks = ticks

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily | SummaryMetricFamily]:
        with self.engine.connect().execution_options(**READ_ONLY) as conn:
            received = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
            by_severity: dict[str, int] = dict(
                conn.execute(
                    sa.select(exceptions.c.severity, sa.func.count())
                    .where(exceptions.c.state.in_(OPEN_STATES))
                    .group_by(exceptions.c.severity)
                ).all()
            )
            sent: dict[str, int] = dict(
                conn.execute(
                    sa.select(alerts.c.severity, sa.func.count())
                    .where(alerts.c.published_at.is_not(None))
                    .group_by(alerts.c.severity)
                ).all()
            )
        ingest = CounterMetricFamily(
            "packline_events_received", "Station events stored by central (rate() = ingest rate)"
        )
        ingest.add_metric([], float(received))
        yield ingest

        backlog = GaugeMetricFamily(
            "packline_station_backlog_events",
            "Events a station holds that central has not acknowledged",
            labels=["station"],
        )
        oldest = GaugeMetricFamily(
            "packline_station_oldest_unsent_seconds",
            "Age of a station's oldest unsent event (0 when none)",
            labels=["station"],
        )
        online = GaugeMetricFamily(
            "packline_station_online", "1 while the station is online", labels=["station"]
        )
        unwatched = GaugeMetricFamily(
            "packline_watch_waiting_events",
            "Events of a station stored and acknowledged that the watch has not reacted to",
            labels=["station"],
        )
        behind = waiting(self.engine)
        for s in list_stations(self.engine, site=self.site):
            backlog.add_metric([s["station"]], float(s["backlog"]))
            oldest.add_metric([s["station"]], float(s["backlog_oldest_age_s"] or 0.0))
            online.add_metric([s["station"]], 1.0 if s["online"] else 0.0)
            unwatched.add_metric([s["station"]], float(behind.get(s["station"], 0)))
        yield backlog
        yield oldest
        yield online
        yield unwatched

        open_x = GaugeMetricFamily(
            "packline_open_exceptions", "Exceptions not yet resolved", labels=["severity"]
        )
        for severity in ("general", "major"):
            open_x.add_metric([severity], float(by_severity.get(severity, 0)))
        yield open_x

        alerts_sent = CounterMetricFamily(
            "packline_alerts_sent", "Alerts published to the broker", labels=["severity"]
        )
        for severity in sorted({"general", "major", *sent}):
            alerts_sent.add_metric([severity], float(sent.get(severity, 0)))
        yield alerts_sent

        letters = CounterMetricFamily(
            "packline_dead_letters", "Station messages set aside, by reason", labels=["reason"]
        )
        for reason, n in dead_letter_counts(self.engine).items():
            letters.add_metric([reason], float(n))
        yield letters

        if self.ticks is not None:
            stats = self.ticks()
            tick = SummaryMetricFamily(
                "packline_tick_duration_seconds", "Duration of the watch's ticks"
            )
            tick.add_metric([], count_value=stats.count, sum_value=stats.seconds_total)
            yield tick
            last = GaugeMetricFamily(
                "packline_tick_last_duration_seconds", "Duration of the watch's last tick"
            )
            last.add_metric([], stats.last_seconds or 0.0)
            yield last


def metrics_text(
    engine: Engine, *, site: str, ticks: Callable[[], TickStats] | None = None
) -> bytes:
    """The Prometheus text exposition of central's metrics now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Central(engine, site, ticks))
    return generate_latest(registry)
