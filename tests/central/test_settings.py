"""CentralSettings: TOML file, PACKLINE_* environment and command-line options."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.settings import CentralSettings
from packline.settings import load_settings
from sync.errors import UserError


def test_settings_from_toml_env_and_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "central.toml"
    config.write_text('site = "sz-1"\nhttp_port = 9000\ndb_url = "sqlite:///x.db"\n')
    monkeypatch.setenv("PACKLINE_HTTP_PORT", "9100")
    loaded = load_settings(CentralSettings, config, db_url="sqlite:///y.db", site=None)
    assert (loaded.site, loaded.http_port, loaded.db_url) == ("sz-1", 9100, "sqlite:///y.db")
    assert loaded.mqtt_url == "mqtt://127.0.0.1:1883"
    config.write_text('sitee = "typo"\n')
    with pytest.raises(UserError, match="sitee"):
        load_settings(CentralSettings, config)
