"""The ``packline`` command: mounts each package's own command group.

Errors a person can cause end with one line on stderr and exit code 2, never a
traceback: :class:`sync.errors.UserError`, the base of every library's person-facing error.
"""

from __future__ import annotations

import sys

import typer

from drivers.errors import DriverError
from packline import __version__
from sync.errors import UserError

__all__ = ["app", "main"]

app = typer.Typer(
    name="packline",
    help="Packing-bench edge agent and central deadline service.",
    no_args_is_help=True,
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
    from packline.commands.central import app as central_app
    from packline.commands.edge import app as edge_app
    from packline.commands.label import app as label_app
    from packline.commands.printer import app as printer_app
    from packline.commands.scanner import app as scanner_app
    from packline.demo import demo

    app.add_typer(edge_app, name="edge", help="Run a packing station (edge agent).")
    app.add_typer(central_app, name="central", help="Run and manage the central service.")
    app.add_typer(label_app, name="label", help="Render labels to PNG, Brother QL or ZPL.")
    app.add_typer(printer_app, name="printer", help="Query, test and fake label printers.")
    app.add_typer(scanner_app, name="scanner", help="Listen to and list barcode scanners.")
    app.command(name="demo")(demo)


_mount()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        # Without standalone mode click returns a command's exit code instead of exiting.
        code = app(args=argv, prog_name="packline", standalone_mode=False)
    except (UserError, DriverError) as exc:
        print(f"packline: error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        print("packline: aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
