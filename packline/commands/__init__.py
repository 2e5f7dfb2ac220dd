"""The ``packline`` command groups, one module per group (``packline edge`` → ``edge``).

They are the application shell's glue: they read settings and options, call the
libraries (``edge``, ``central``, ``drivers``, ``sync``, ``web``) and turn what a person
can get wrong into one line on stderr. Each module builds its group with
:func:`command_group`, so every command's help and usage read the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand

__all__ = ["Command", "CommandGroup", "command_group"]

F = TypeVar("F", bound=Callable[..., Any])


def _usage_name(argument: TyperArgument) -> str:
    # click's own spelling: FILE when required, [FILE] when not, FILE... for many.
    name = argument.metavar or (argument.name or "").upper()
    if not argument.required:
        name = f"[{name}]"
    if argument.nargs != 1:
        name += "..."
    return name


class Command(TyperCommand):
    """A command whose usage line names its arguments as click does (``FILE``, not
    ``{file}``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS]`` and each argument, for the ``Usage:`` line."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_usage_name(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class CommandGroup(typer.Typer):
    """A :class:`typer.Typer` whose commands are :class:`Command` unless told otherwise."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        """Register a command (see :meth:`typer.Typer.command`)."""
        kwargs.setdefault("cls", Command)
        register: Callable[[F], F] = super().command(*args, **kwargs)
        return register


def command_group(**kwargs: Any) -> CommandGroup:
    """A command group with plain click help and messages (no Rich boxes)."""
    kwargs.setdefault("no_args_is_help", True)
    kwargs.setdefault("rich_markup_mode", None)
    return CommandGroup(**kwargs)
