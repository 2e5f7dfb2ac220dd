"""Settings from a TOML file plus ``PACKLINE_*`` environment variables.

Precedence, highest first: explicit overrides (command-line options), environment,
the TOML file, defaults. So one station.toml can be shared and a single value
overridden per process (``PACKLINE_MQTT_URL=...``).
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    TomlConfigSettingsSource,
)

from sync.errors import UserError

__all__ = ["load_settings"]

S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], path: Path | None = None, **overrides: Any) -> S:
    """Build ``cls`` from ``path`` (TOML), the environment and explicit ``overrides``.

    ``None`` overrides are ignored (an option the person did not give). Invalid
    values and unreadable files raise :class:`UserError` naming the problem.
    """
    if path is not None:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"config file not found: {path}") from None
        except IsADirectoryError:
            raise UserError(f"config file {path} is a folder: give the TOML file in it") from None
        except OSError as exc:
            raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"config file {path} is not valid TOML: {exc}") from None

    class _Sourced(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls_,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            return tuple(sources)

    try:
        loaded = _Sourced(**{k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(loaded.model_dump())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if first["type"] == "missing":
            env = f"PACKLINE_{where.upper()}"
            file = f"in {path}" if path else "in a config file (--config)"
            raise UserError(
                f"missing setting {where}: set it {file}, as {env} or by its option"
            ) from None
        what = f"setting {where}" if where else "settings"  # a rule across settings
        source = f" (from {path} or the environment)" if path else ""
        if first["type"] == "extra_forbidden":
            known = sorted(cls.model_fields)
            near = difflib.get_close_matches(where, known, n=1, cutoff=0.6)
            hint = f" — did you mean {near[0]}?" if near else f" (known: {', '.join(known)})"
            file = f" in {path}" if path else ""
            raise UserError(f"unknown setting {where}{file}{hint}") from None
        # A validator's own message is the whole story; pydantic prefixes "Value error, ".
        message = str(first["msg"]).removeprefix("Value error, ")
        raise UserError(f"invalid {what}{source}: {message}") from None
