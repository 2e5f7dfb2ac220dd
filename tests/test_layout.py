"""The packages import from this repository and import each other one way only."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Which of the repository's top-level packages each one may import (docs/architecture.md):
# sync at the bottom, drivers on sync, edge on drivers and sync, central on sync, web on
# central, and the application shell (packline) on top of them all.
ALLOWED: dict[str, frozenset[str]] = {
    "sync": frozenset({"sync"}),
    "drivers": frozenset({"drivers", "sync"}),
    "edge": frozenset({"edge", "drivers", "sync"}),
    "central": frozenset({"central", "sync"}),
    "web": frozenset({"web", "central", "sync"}),
    "packline": frozenset({"packline", "edge", "drivers", "sync", "central", "web"}),
}
PACKAGES = tuple(ALLOWED)


def imported_packages(source: str, *, filename: str = "<source>") -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every import in ``source`` naming one of ours.

    Every import counts, also those inside functions and ``if TYPE_CHECKING:``.
    """
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside their own package
        for name in names:
            top = name.split(".")[0]
            if top in ALLOWED:
                yield node.lineno, top


def layer_violations(package: str, source: str, *, filename: str) -> list[str]:
    """Imports in ``source`` (a module of ``package``) that run against the layers."""
    return [
        f"{filename}:{line}: {package} imports {target}"
        for line, target in imported_packages(source, filename=filename)
        if target not in ALLOWED[package]
    ]


def test_the_layer_check_sees_an_upward_import() -> None:
    source = "import os\nfrom sync import topics\n\ndef f():\n    from packline import x\n"
    assert layer_violations("central", source, filename="m.py") == [
        "m.py:5: central imports packline"
    ]
    assert layer_violations("web", "import central.db\nimport edge.store\n", filename="w.py") == [
        "w.py:2: web imports edge"
    ]


def test_packages_import_one_way() -> None:
    found: list[str] = []
    modules = 0
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = str(path.relative_to(REPO))
            found += layer_violations(package, path.read_text(encoding="utf-8"), filename=name)
            modules += 1
    assert modules > 50  # the walk found the code
    assert not found, "imports against the layers:\n" + "\n".join(found)


@pytest.mark.parametrize("name", ["packline", "edge", "drivers", "sync", "central", "web"])
def test_package_imports_from_this_repo(name: str) -> None:
    module = importlib.import_module(name)
    origin = Path(module.__file__ or "").resolve()
    # A stray distribution with the same top-level name would live in site-packages.
    assert origin.is_relative_to(REPO), f"{name} imported from {origin}, not {REPO}"
