"""Settings of ``packline central``: a TOML file plus ``PACKLINE_*`` variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    site: str = Field(default="demo", min_length=1, pattern=r"^[^/+#\s]+$")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
