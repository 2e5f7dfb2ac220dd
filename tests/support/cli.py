"""The ``packline`` console script as a person runs it, and its command tree."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main

REPO = Path(__file__).resolve().parents[2]
PACKLINE = [sys.executable, "-m", "packline"]


def run_packline(
    *args: str | Path, timeout: float = 120, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """Run ``packline ARGS`` to its end; stdout and stderr captured as text."""
    return subprocess.run(
        [*PACKLINE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@functools.cache
def command_tree() -> Any:
    """The click command behind ``packline`` (typer builds it from the app; built once
    per test process — building it takes a while, and it cannot change meanwhile)."""
    from packline.cli import app

    return typer.main.get_command(app)


def all_commands() -> Iterator[tuple[list[str], Any]]:
    """Every group and command as (path below ``packline``, click command), root first."""

    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            if not sub.hidden:
                yield from walk(sub, [*path, name])

    yield from walk(command_tree(), [])


def is_group(command: Any) -> bool:
    """Whether ``command`` has subcommands."""
    return bool(getattr(command, "commands", None))
