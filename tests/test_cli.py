"""``packline`` as a person types it: usage mistakes, help of every command, exit codes.

Usage mistakes get click's usual message (usage line, a pointer to ``--help``, the
error) on stderr and exit code 2, never a traceback. Every group and command is found
by walking the command tree, so a new command is covered without touching this file.
"""

from __future__ import annotations

import re
import socket

import pytest

from tests.support.cli import all_commands, is_group, run_packline

COMMANDS = [path for path, _ in all_commands()]


def _usage_mistake(args: list[str], *, usage: str, error: str) -> None:
    done = run_packline(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == f"Usage: {usage}", done.stderr
    assert lines[1].startswith("Try 'packline") and lines[1].endswith("--help' for help.")
    assert lines[-1].startswith("Error: ") and error in lines[-1], done.stderr


def test_unknown_command() -> None:
    _usage_mistake(
        ["nosuch"], usage="packline [OPTIONS] COMMAND [ARGS]...", error="No such command"
    )


def test_unknown_subcommand() -> None:
    _usage_mistake(
        ["edge", "nosuch"],
        usage="packline edge [OPTIONS] COMMAND [ARGS]...",
        error="No such command 'nosuch'",
    )


def test_missing_argument() -> None:
    _usage_mistake(
        ["central", "import-orders"],
        usage="packline central import-orders [OPTIONS] FILE",
        error="Missing argument 'FILE'",
    )


@pytest.mark.parametrize(
    ("args", "usage", "error"),
    [
        (
            ["central", "serve", "--http-port", "eighty"],
            "packline central serve [OPTIONS]",
            "Invalid value for '--http-port'",
        ),
        (
            ["label", "render", "--kind", "sticker", "--out", "x.png"],
            "packline label render [OPTIONS]",
            "Invalid value for '--kind'",
        ),
        (["printer", "fake", "pcl"], "packline printer fake [OPTIONS] KIND", "'pcl'"),
        (["demo", "--stations", "0"], "packline demo [OPTIONS]", "Invalid value for '--stations'"),
        (["scanner", "listen", "--jsn"], "packline scanner listen [OPTIONS] URL", "--jsn"),
    ],
    ids=["not-a-number", "not-a-kind", "not-a-printer-language", "out-of-range", "no-such-option"],
)
def test_bad_option_value(args: list[str], usage: str, error: str) -> None:
    _usage_mistake(args, usage=usage, error=error)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "packline")
def test_help_of_every_command(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    if not path:  # the console script itself, as a person runs it
        done = run_packline("--help")
        code, out, err = done.returncode, done.stdout, done.stderr
    else:
        # The same entry point in this process: a new Python per command would spend
        # most of a minute importing packline again and again.
        from packline.cli import main

        code = main([*path, "--help"])
        out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    usage = out.splitlines()[0]
    assert usage.startswith(" ".join(["Usage: packline", *path]))
    # click's spelling of arguments (FILE, URL), not typer's {file}.
    assert "{" not in usage and "}" not in usage, usage
    # A flag takes no value; its help shows none.
    assert "<bool>" not in out
    assert "╭" not in out  # plain click help, no Rich boxes


def test_the_walk_finds_every_command() -> None:
    assert ["edge", "run"] in COMMANDS and ["printer", "fake"] in COMMANDS
    assert ["demo"] in COMMANDS and [] in COMMANDS
    assert len(COMMANDS) >= 18


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "packline")
def test_every_command_and_option_has_help(path: list[str]) -> None:
    command = {tuple(p): c for p, c in all_commands()}[tuple(path)]
    assert (command.help or "").strip(), f"packline {' '.join(path)} has no help text"
    if is_group(command):
        return
    for param in command.params:
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        assert (getattr(param, "help", None) or "").strip(), f"{path}: {param.name} has no help"


def test_fixed_sets_are_choices() -> None:
    done = run_packline("label", "render", "--help")
    assert "--kind <waybill|packing-list|product|return>" in done.stdout
    assert "--format <png|ql|zpl>" in done.stdout
    done = run_packline("printer", "fake", "--help")
    assert re.search(r"KIND <ql\|zpl>", done.stdout), done.stdout


def test_label_kinds_match_the_renderers() -> None:
    from drivers.labels.render import KINDS
    from packline.commands.label import LabelKind

    assert [kind.value for kind in LabelKind] == list(KINDS)


def test_printer_status_exit_code_passes_through() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))  # an SNMP port where nothing answers
        port = udp.getsockname()[1]
        done = run_packline(
            "printer", "status", f"ql+tcp://127.0.0.1:1?snmp_port={port}&timeout=0.5"
        )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("offline:") and done.stderr == ""


def test_main_returns_the_exit_code_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    from packline.cli import main

    assert main(["nosuch"]) == 2
    assert "No such command 'nosuch'" in capsys.readouterr().err
    assert main(["label", "sizes"]) == 0
    assert "100x180" in capsys.readouterr().out
