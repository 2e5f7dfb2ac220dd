"""The commands in README.md and docs/ are the real ones, and every real one is there.

Each ``packline ...`` shown in a code block or an inline code span is walked down the
command tree: every word up to the command must name a group or command that exists.
Every command of the tree must be shown somewhere, so a new command gets documented.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import REPO, all_commands, command_tree, is_group

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def _code(text: str) -> list[str]:
    """The lines of fenced code blocks and the inline code spans of a Markdown text."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    lines = [line for block in blocks for line in block.splitlines()]
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return lines + re.findall(r"`([^`\n]+)`", prose)


def shown_commands() -> list[tuple[str, list[str]]]:
    """(where, words after ``packline``) of every command line the docs show."""
    found = []
    for doc in DOCS:
        for code in _code(doc.read_text(encoding="utf-8")):
            line = code.strip().removeprefix("$ ")
            if line.startswith("packline ") or line == "packline":
                words = line.split("#")[0].split()[1:]
                found.append((f"{doc.relative_to(REPO)}: {line}", words))
    return found


def resolve(words: list[str]) -> list[str]:
    """The command path named by the first ``words``; raises KeyError for a wrong one."""
    node: Any = command_tree()
    path: list[str] = []
    for word in words:
        if not is_group(node) or word.startswith("-"):
            break  # the rest are the command's options and arguments
        node = node.commands[word]
        path.append(word)
    return path


SHOWN = shown_commands()


@functools.cache
def documented_paths() -> list[list[str]]:
    """The command path of every command the docs show (walked once per test process)."""
    return [resolve(words) for _, words in SHOWN]


def test_the_docs_show_commands() -> None:
    assert len(SHOWN) > 15
    assert any(words[:2] == ["label", "render"] for _, words in SHOWN)


@pytest.mark.parametrize(("where", "words"), SHOWN, ids=[where for where, _ in SHOWN])
def test_a_shown_command_exists(where: str, words: list[str]) -> None:
    try:
        resolve(words)
    except KeyError as exc:
        pytest.fail(f"{where}: packline has no command {exc}")


def test_resolve_refuses_a_command_that_does_not_exist() -> None:
    assert resolve(["printer", "fake", "ql", "--port", "1"]) == ["printer", "fake"]
    with pytest.raises(KeyError):
        resolve(["printer", "feak"])


@pytest.mark.parametrize(
    "path",
    [p for p, c in all_commands() if p and not is_group(c)],
    ids=lambda p: " ".join(p),
)
def test_every_command_is_documented(path: list[str]) -> None:
    documented = documented_paths()
    assert path in documented, f"`packline {' '.join(path)}` is not shown in README.md or docs/"


def test_docs_link_to_files_that_exist() -> None:
    # Relative links between the pages (rules, architecture, examples) must resolve.
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", doc.read_text("utf-8")):
            assert (doc.parent / target).exists(), f"{doc.relative_to(REPO)} links to {target}"


def test_paths_of_the_repository_named_in_the_docs_exist() -> None:
    # A moved module must not stay behind in the docs: `edge/cli.py`, `sync/broker.py`...
    for doc in DOCS:
        text = doc.read_text("utf-8")
        for name in re.findall(r"`((?:packline|edge|drivers|sync|central|web)/[\w/.]+)`", text):
            assert (REPO / name).exists() or Path(REPO / name).with_suffix("").exists(), (
                f"{doc.relative_to(REPO)} names {name}, which does not exist"
            )
