"""The README's commands are real: every `packline ...` line names existing commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def _readme_commands() -> list[list[str]]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            words = line.split("#")[0].split()
            if words[:1] == ["packline"]:
                # Keep the command path: words up to the first option or argument.
                path = []
                for word in words[1:]:
                    if not re.fullmatch(r"[a-z][a-z-]*", word):
                        break
                    path.append(word)
                commands.append(path)
    return commands


COMMANDS = _readme_commands()


def test_readme_names_commands() -> None:
    assert ["demo"] in COMMANDS and ["edge", "run"] in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "packline")
def test_readme_command_exists(path: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "packline", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("target", ["demo", "test", "lint", "bench"])
def test_make_targets_exist(target: str) -> None:
    out = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in README and "make test" in ci
