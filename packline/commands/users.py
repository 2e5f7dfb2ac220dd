"""``packline central user``: the people who log in to the web page (docs/web.md).

``add NAME --role R [--dept D]`` asks for the password twice (or reads one line from
standard input with ``--password-stdin``); ``passwd``, ``remove``, ``list`` and
``token`` (a new API token for scripts, printed once).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from packline.commands import command_group
from sync.errors import UserError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["app"]

app = command_group(help="Add, list and remove the people who log in to the web page.")

CONFIG = typer.Option(
    None, "--config", metavar="FILE", help="TOML settings file (see docs/central.md)."
)
DB_URL = typer.Option(
    None, "--db-url", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://..."
)
PASSWORD_STDIN = typer.Option(
    False, "--password-stdin", help="Read the password from the first line of standard input."
)
T = TypeVar("T")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UserError("--password-stdin: standard input gave no password")
        return password
    if not sys.stdin.isatty():
        raise UserError("no terminal to ask for the password: use --password-stdin")
    password = str(typer.prompt("Password", hide_input=True))
    again = str(typer.prompt("Password again", hide_input=True))
    if password != again:
        raise UserError("the two passwords differ; nothing changed")
    return password


def _run(config: Path | None, db_url: str | None, step: Callable[[Engine], T]) -> T:
    from central.settings import CentralSettings
    from packline.commands.central import _database
    from packline.settings import load_settings

    settings = load_settings(CentralSettings, config, db_url=db_url)
    with _database(settings.db_url) as engine:
        return step(engine)


@app.command("add")
def add(
    name: str = typer.Argument(..., metavar="NAME", help="The log-in name."),
    role: str = typer.Option(..., "--role", help="packer, supervisor, manager or admin."),
    dept: str | None = typer.Option(
        None, "--dept", help="A supervisor's department (warehouse, logistics, ...)."
    ),
    password_stdin: bool = PASSWORD_STDIN,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Add a user who can log in to the web page."""
    from central.users import ROLES, add_user

    if role not in ROLES:  # before asking for a password
        raise UserError(f"--role {role!r}: must be one of {', '.join(ROLES)}")
    password = _password(password_stdin)
    user = _run(
        config, db_url, lambda e: add_user(e, name, role=role, dept=dept, password=password)
    )
    where = f" of {user.dept}" if user.dept else ""
    typer.echo(f"added {user.name}: {user.role}{where}")


@app.command("passwd")
def passwd(
    name: str = typer.Argument(..., metavar="NAME", help="The log-in name."),
    password_stdin: bool = PASSWORD_STDIN,
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Set a user's password (their open sessions end)."""
    from central.users import set_password

    password = _password(password_stdin)
    _run(config, db_url, lambda e: set_password(e, name, password))
    typer.echo(f"password of {name} changed; their sessions ended")


@app.command("remove")
def remove(
    name: str = typer.Argument(..., metavar="NAME", help="The log-in name."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Remove a user with their sessions and API tokens."""
    from central.users import remove_user

    _run(config, db_url, lambda e: remove_user(e, name))
    typer.echo(f"removed {name}")


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """List the users: name, role, department."""
    import json

    from central.users import list_users

    found = _run(config, db_url, list_users)
    if as_json:
        typer.echo(json.dumps({"users": found}, ensure_ascii=False))
        return
    if not found:
        typer.echo("no users yet: add one with packline central user add NAME --role admin")
    for u in found:
        typer.echo(f"{u['name']:<24} {u['role']:<11} {u['dept'] or '-'}")


@app.command("token")
def token(
    name: str = typer.Argument(..., metavar="NAME", help="The log-in name."),
    db_url: str | None = DB_URL,
    config: Path | None = CONFIG,
) -> None:
    """Print a new API token for NAME (send as ``Authorization: Bearer TOKEN``)."""
    from central.users import issue_token

    typer.echo(_run(config, db_url, lambda e: issue_token(e, name)))
