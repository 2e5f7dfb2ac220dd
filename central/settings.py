"""Settings of ``packline central``: a TOML file plus ``PACKLINE_*`` variables."""

from __future__ import annotations

import datetime as dt
import os
import re
import zoneinfo
from pathlib import Path

import sqlalchemy as sa
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from central.watch.rules import (
    DEFAULT_TICKET_ROUTES,
    DeadlineRules,
    Hours,
    Policies,
    Route,
    Routing,
    Seconds,
    TicketRoutes,
    WatchRules,
    policy_table,
    routing_table,
)
from sync.mqtt import BrokerSettings

__all__ = ["CentralSettings", "default_db_path", "shown_db_url"]


def default_db_path() -> Path:
    """Where central's SQLite file lives when no ``db_url`` is set.

    ``$XDG_DATA_HOME/packline/central.db``, or ``~/.local/share/packline/central.db``
    when that variable is unset or not absolute (the XDG base directory rules): one
    place per user, whatever folder a command runs in, so ``import-orders`` and
    ``serve`` always meet in the same database.
    """
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "packline" / "central.db"


def _default_db_url() -> str:
    return f"sqlite:///{default_db_path()}"


def shown_db_url(url: str) -> str:
    """``url`` as it may be shown or logged: the password replaced by ``***``."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url  # not a URL at all; opening it fails with its own message


class CentralSettings(BrokerSettings, BaseSettings):
    """Where central keeps its data, which broker and site it serves, where the page is.

    Load with ``packline.settings.load_settings(CentralSettings, path, **overrides)``;
    each field can be set as ``PACKLINE_<NAME>`` (e.g. ``PACKLINE_DB_URL``).
    """

    model_config = SettingsConfigDict(env_prefix="PACKLINE_", extra="forbid")

    db_url: str = Field(
        default_factory=_default_db_url,
        description="sqlite:///PATH or postgresql+psycopg://user@host:5432/db",
    )
    site: str = Field(default="demo", min_length=1, max_length=64)
    timezone: str = Field(
        default="Asia/Shanghai",
        description="the site's time zone: pages show times in it (stored in UTC)",
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    skew_tolerance: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="seconds a shipment's claimed time may differ from its corrected time "
        "before it is flagged",
    )
    backlog_alert_after: float = Field(
        default=15 * 60.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds an online station may hold an unsent event before an alert",
    )
    max_message_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="bigger station messages go to the dead letters unread",
    )
    worker: str = Field(
        default="",
        max_length=64,
        description="this process's name among several on one database (its MQTT client "
        "id); default: the host name and process id on PostgreSQL",
    )
    web: bool = Field(default=True, description="serve the status page (off: ingest only)")
    clock_every: float = Field(
        default=30.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds between the acks that tell each online station central's time",
    )

    # The watch (docs/central.md, "The watch"): checked together by rules().
    tick_every: Seconds = Field(
        default=dt.timedelta(seconds=15), description="seconds between ticks; 0 turns it off"
    )
    deadlines: DeadlineRules = Field(default_factory=DeadlineRules)
    escalation: Policies = Field(default_factory=lambda: policy_table({}))
    routing: Routing = Field(default_factory=lambda: routing_table({}))
    offline_after: Seconds = dt.timedelta(minutes=5)
    labels_low: int = Field(default=50, ge=0)
    stalled_after: Hours = dt.timedelta(hours=48)
    tickets: TicketRoutes = Field(default_factory=lambda: dict(DEFAULT_TICKET_ROUTES))

    @field_validator("site")
    @classmethod
    def _site(cls, value: str) -> str:
        # The site is a level of every MQTT topic: no wildcards, separators or spaces.
        if re.search(r"[/+#\s]", value):
            raise ValueError(f"must not contain '/', '+', '#' or spaces, not {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"no time zone {value!r} (e.g. Asia/Shanghai, UTC)") from None
        return value

    def zone(self) -> zoneinfo.ZoneInfo:
        """The site's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)

    @field_validator("worker")
    @classmethod
    def _worker(cls, value: str) -> str:
        # Part of an MQTT client id: letters, digits, '-', '_' and '.' only.
        if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ValueError(f"letters, digits, '.', '-' and '_' only, not {value!r}")
        return value

    @field_validator("routing")
    @classmethod
    def _routes_have_policies(cls, value: dict[str, Route], info: ValidationInfo) -> object:
        policies = info.data.get("escalation") or {}
        for kind, route in value.items():
            if route.policy_name not in policies:
                raise ValueError(
                    f"{kind}: no escalation policy {route.policy_name!r} "
                    f"(there are {', '.join(sorted(policies))})"
                )
        return value

    @field_validator("tick_every")
    @classmethod
    def _tick_every(cls, value: dt.timedelta) -> dt.timedelta:
        if value < dt.timedelta(0):
            raise ValueError("must not be negative (0 turns ticking off)")
        return value

    def rules(self) -> WatchRules:
        """The watch's rules from these settings."""
        return WatchRules(
            tick_every=self.tick_every,
            deadlines=self.deadlines,
            routing=self.routing,
            escalation=self.escalation,
            offline_after=self.offline_after,
            labels_low=self.labels_low,
            stalled_after=self.stalled_after,
            tickets=self.tickets,
        )
