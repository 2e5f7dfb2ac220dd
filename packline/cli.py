"""The ``packline`` command: mounts each package's own command group.

Errors a person can cause end with one line on stderr and exit code 2, never a
traceback: :class:`sync.errors.UserError`, the base of every library's person-facing error.
"""

from __future__ import annotations

import sys

import typer

from packline import __version__
from packline.commands import command_group
from sync.errors import UserError

__all__ = ["app", "main"]

app = command_group(
    name="packline",
    help="Packing-bench edge agent and central deadline service.",
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"packline {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Packing-bench edge agent and central deadline service."""


def _mount() -> None:
    from packline.commands.alerts import app as alerts_app
    from packline.commands.broker import app as broker_app
    from packline.commands.central import app as central_app
    from packline.commands.edge import app as edge_app
    from packline.commands.label import app as label_app
    from packline.commands.printer import app as printer_app
    from packline.commands.scanner import app as scanner_app
    from packline.demo import demo

    app.add_typer(edge_app, name="edge", help="Run a packing station (edge agent).")
    app.add_typer(central_app, name="central", help="Run and manage the central service.")
    app.add_typer(alerts_app, name="alerts", help="Watch and acknowledge alerts over MQTT.")
    app.add_typer(label_app, name="label", help="Render labels to PNG, Brother QL or ZPL.")
    app.add_typer(printer_app, name="printer", help="Query, test and fake label printers.")
    app.add_typer(scanner_app, name="scanner", help="Listen to and list barcode scanners.")
    app.add_typer(broker_app, name="broker", help="Configure the site's MQTT broker.")
    app.command(name="demo")(demo)


_mount()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code.

    click runs in its standalone mode, so a usage mistake (unknown command, missing
    argument, bad option value) prints click's usage message on stderr and exits 2,
    and a command's own exit code (``raise typer.Exit(1)``) passes through.
    """
    try:
        app(args=argv, prog_name="packline")
    except SystemExit as exc:
        return _exit_code(exc.code)
    except UserError as exc:
        print(f"packline: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before click's own handling starts (slow imports)
        return 130
    return 0  # pragma: no cover - standalone mode always ends in SystemExit


def _exit_code(code: str | int | None) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(f"packline: error: {code}", file=sys.stderr)  # sys.exit("message")
    return 1


def _one_line(message: str) -> str:
    # A person reads one line; library messages may quote multi-line text.
    return " ".join(message.split()) or "unknown error"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
