"""Settings of ``packline central``: a TOML file plus ``PACKLINE_*`` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sync.mqtt import broker_url_setting, check_broker_url, read_url_file

__all__ = ["CentralSettings"]


class CentralSettings(BaseSettings):
    """Where central keeps its data, which broker and site it serves, where the page is.

    Load with ``packline.settings.load_settings(CentralSettings, path, **overrides)``;
    each field can be set as ``PACKLINE_<NAME>`` (e.g. ``PACKLINE_DB_URL``).
    """

    model_config = SettingsConfigDict(env_prefix="PACKLINE_", extra="forbid")

    db_url: str = Field(
        default="sqlite:///./var/central.db",
        description="sqlite:///PATH or postgresql+psycopg://user@host:5432/db",
    )
    mqtt_url: str = Field(
        default="mqtt://127.0.0.1:1883", description="mqtt://[user[:pw]@]host[:port]"
    )
    mqtt_url_file: Path | None = Field(
        default=None, description="a file holding the broker URL (docs/broker.md)"
    )
    site: str = Field(default="demo", min_length=1, pattern=r"^[^/+#\s]+$")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)

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
