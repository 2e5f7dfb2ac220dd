"""The packages import from this repository, import each other one way, and the CLI answers."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from packline import __version__

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


def _packline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "packline", *args], capture_output=True, text=True, timeout=60
    )


def test_version() -> None:
    out = _packline("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"packline {__version__}"


def test_help_lists_every_group() -> None:
    out = _packline("--help")
    assert out.returncode == 0
    for group in ("edge", "central", "label", "printer", "scanner", "demo"):
        assert group in out.stdout


def test_a_persons_mistake_is_one_line_and_exit_2(tmp_path: Path) -> None:
    out = _packline("edge", "run", "--config", str(tmp_path / "missing.toml"))
    assert out.returncode == 2
    assert out.stderr == f"packline: error: config file not found: {tmp_path / 'missing.toml'}\n"
    bad = tmp_path / "bad.toml"
    bad.write_text('station = "has space"\n')
    out = _packline("edge", "status", "--config", str(bad))
    assert out.returncode == 2
    assert out.stderr.startswith("packline: error: invalid setting station")
    assert out.stderr.count("\n") == 1
    out = _packline("scanner", "listen", "nosuch://device")
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_command_exit_codes_pass_through(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))  # an SNMP port where nothing answers
        port = udp.getsockname()[1]
        out = _packline("printer", "status", f"ql+tcp://127.0.0.1:1?snmp_port={port}&timeout=0.5")
    assert out.returncode == 1, out.stderr  # not ready: offline


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--mqtt-url", "http://central:1883", "mqtt_url"),
        ("--scanner", "usb-hid://scanner", "usb-hid"),
        ("--printer", "lpd://printer", "lpd"),
    ],
)
def test_edge_run_refuses_a_bad_url_in_one_line(
    tmp_path: Path, option: str, value: str, words: str
) -> None:
    out = _packline("edge", "run", "--station", "b1", "--data-dir", str(tmp_path), option, value)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("packline: error:") and words in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
