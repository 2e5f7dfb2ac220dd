"""Station settings: ``station.toml`` plus ``PACKLINE_*`` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from drivers.labels.sizes import label_size
from sync.mqtt import broker_url_setting, check_broker_url, read_url_file

__all__ = ["NAME", "StationSettings"]

NAME = re.compile(r"[A-Za-z0-9_.-]+")
"""What a station or site name may be made of."""


class StationSettings(BaseSettings):
    """Everything a packing station needs to know about itself.

    Example ``station.toml``::

        station = "bench-01"
        site = "wh1"
        data_dir = "/var/lib/packline"
        mqtt_url_file = "/etc/packline/bench-01.url"   # or mqtt_url = "mqtt://central.lan:1883"
        scanner = "serial:///dev/ttyACM0?baud=9600"
        printer = "ql+tcp://10.0.0.5:9100?model=QL-820NWB&label=62"
        label_size = "62"
    """

    model_config = SettingsConfigDict(env_prefix="PACKLINE_", extra="ignore")

    # At most 64 characters: what central's columns and the wire hold.
    station: str = Field(min_length=1, max_length=64)
    site: str = Field(default="demo", min_length=1, max_length=64)
    data_dir: Path = Path("/var/lib/packline")
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_url_file: Path | None = None
    scanner: str = "serial:///dev/ttyACM0?baud=9600"
    printer: str = "file:///var/lib/packline/printed"
    label_size: str = "100x180"
    label_dpi: int = Field(default=300, ge=150, le=600)
    operator: str = ""
    resend_after: float = Field(default=5.0, gt=0)
    health_interval: float = Field(default=15.0, gt=0)

    @field_validator("station", "site")
    @classmethod
    def _name(cls, value: str) -> str:
        # Both are parts of MQTT topics and of file names.
        if not NAME.fullmatch(value):
            raise ValueError(f"use only letters, digits, '_', '.' and '-', not {value!r}")
        return value

    @field_validator("label_size")
    @classmethod
    def _label_size(cls, value: str) -> str:
        label_size(value)  # its error names the known sizes
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        check_broker_url(value)  # its ValueError names what is wrong, never the password
        return value

    @field_validator("mqtt_url_file")
    @classmethod
    def _broker_url_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_url_file(value)  # unreadable or not a URL: one line naming the file
        return value

    @model_validator(mode="after")
    def _broker_url_from_file(self) -> Self:
        self.mqtt_url = broker_url_setting(
            mqtt_url=self.mqtt_url,
            mqtt_url_file=self.mqtt_url_file,
            url_given="mqtt_url" in self.model_fields_set,
        )
        return self

    @property
    def db_path(self) -> Path:
        """The station store's SQLite file."""
        return self.data_dir / f"{self.station}.sqlite"
