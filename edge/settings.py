"""Station settings: ``station.toml`` plus ``PACKLINE_*`` environment variables.

Unknown keys are refused (a misspelt ``printr = ...`` would otherwise be silently
ignored and the station would print somewhere else); the loader names the nearest
known key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from drivers.labels.sizes import label_size
from sync.mqtt import BrokerSettings

__all__ = ["NAME", "StationSettings"]

NAME = re.compile(r"[A-Za-z0-9_.-]+")
"""What a station or site name may be made of."""

_LISTEN = re.compile(r"\A(?P<host>[A-Za-z0-9_.:\[\]-]+):(?P<port>[0-9]{1,5})\Z")


class StationSettings(BrokerSettings, BaseSettings):
    """Everything a packing station needs to know about itself.

    Example ``station.toml``::

        station = "bench-01"
        site = "wh1"
        data_dir = "/var/lib/packline"
        mqtt_url_file = "/etc/packline/bench-01.url"   # or mqtt_url = "mqtt://central.lan:1883"
        scanner = "serial:///dev/ttyACM0?baud=9600"
        printer = "ql+tcp://10.0.0.5:9100?model=QL-820NWB&label=62"
        supervisor_badges = ["OP-9001"]
    """

    model_config = SettingsConfigDict(env_prefix="PACKLINE_", extra="forbid")

    # At most 64 characters: what central's columns and the wire hold.
    station: str = Field(min_length=1, max_length=64)
    site: str = Field(default="demo", min_length=1, max_length=64)
    data_dir: Path = Path("/var/lib/packline")
    scanner: str = "serial:///dev/ttyACM0?baud=9600"
    printer: str = "file:///var/lib/packline/printed"
    # None: the printer's own label (a Brother QL's `label=`), else 100x180.
    label_size: str | None = None
    # None: the printer's resolution (300 for a Brother QL, a ZPL printer's `dpi=`).
    label_dpi: int | None = Field(default=None, ge=150, le=600)
    operator: str = ""
    resend_after: float = Field(default=5.0, gt=0)
    batches_in_flight: int = Field(default=4, ge=1, le=64)
    health_every: float = Field(default=15.0, gt=0)
    badge_prefix: str = "OP-"
    require_operator: bool = True
    supervisor_badges: list[str] = Field(default_factory=list)
    print_packing_list: bool = True
    confirm: Literal["auto", "scan"] = "auto"
    qc_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    site_seed: str = ""
    kiosk_listen: str = "127.0.0.1:8090"
    pii_retention_hours: float = Field(default=72.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _older_names(cls, data: Any) -> Any:
        # health_interval was the name before health_every; old files keep working.
        if isinstance(data, dict) and "health_interval" in data and "health_every" not in data:
            data = {**data, "health_every": data["health_interval"]}
            del data["health_interval"]
        return data

    @field_validator("station", "site")
    @classmethod
    def _name(cls, value: str) -> str:
        # Both are parts of MQTT topics and of file names.
        if not NAME.fullmatch(value):
            raise ValueError(f"use only letters, digits, '_', '.' and '-', not {value!r}")
        return value

    @field_validator("label_size")
    @classmethod
    def _label_size(cls, value: str | None) -> str | None:
        if value is not None:
            label_size(value)  # its error names the known sizes
        return value

    @field_validator("badge_prefix")
    @classmethod
    def _badge_prefix(cls, value: str) -> str:
        if value != value.strip() or value.upper().startswith("CMD-"):
            raise ValueError(f"a badge prefix cannot be {value!r}")
        return value

    @field_validator("kiosk_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        found = _LISTEN.match(value)
        if not found or not 0 < int(found["port"]) < 65536:
            raise ValueError(f"give host:port, e.g. 127.0.0.1:8090, not {value!r}")
        return value

    @property
    def db_path(self) -> Path:
        """The station store's SQLite file."""
        return self.data_dir / f"{self.station}.sqlite"

    @property
    def health_interval(self) -> float:
        """The older name of :attr:`health_every` (seconds between printer readings)."""
        return self.health_every
