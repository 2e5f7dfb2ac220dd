"""A printer whose optional library is not installed says which package to install.

The library is made unimportable in a subprocess (``sys.modules[name] = None`` from a
``sitecustomize`` on ``PYTHONPATH``), the way a machine without the ``pi`` extra
behaves; the printers themselves are the real ones.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

INSTALL = "pip install 'packline[pi]'"

HIDE_LIBRARIES = textwrap.dedent(
    """
    import os
    import sys

    for name in os.environ.get("PACKLINE_TEST_HIDE", "").split(","):
        if name:
            sys.modules[name] = None
    """
)


def _run(tmp_path: Path, hide: str, *args: str) -> subprocess.CompletedProcess[str]:
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(HIDE_LIBRARIES)
    env = dict(os.environ, PACKLINE_TEST_HIDE=hide)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, env=env
    )


@pytest.mark.parametrize(
    ("url", "hide", "package"),
    [
        ("ql+usb://0x04f9:0x209d", "usb", "pyusb"),
        ("zpl+serial:///dev/ttyUSB0?baud=9600", "serial", "pyserial"),
        ("ql+tcp://127.0.0.1:9100", "brother_ql", "brother-ql-next"),
        ("ql+usb://0x04f9:0x209d", "brother_ql", "brother-ql-next"),
        ("ql+file:///dev/usb/lp0", "brother_ql", "brother-ql-next"),
        ("file://{dir}?encode=ql", "brother_ql", "brother-ql-next"),
    ],
)
def test_printer_status_names_the_missing_package(
    tmp_path: Path, url: str, hide: str, package: str
) -> None:
    url = url.format(dir=tmp_path / "printed")
    out = _run(tmp_path, hide, "-m", "packline", "printer", "status", url)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert f"needs the {package} package" in out.stderr
    assert INSTALL in out.stderr


def test_open_printer_raises_missing_library_before_touching_the_device(tmp_path: Path) -> None:
    # ql+usb is checked on opening, not at the first status read or label.
    script = textwrap.dedent(
        """
        from drivers.errors import DriverError, MissingLibrary
        from drivers.printers import open_printer

        try:
            open_printer("ql+usb://0x04f9:0x209d")
        except MissingLibrary as exc:
            assert isinstance(exc, DriverError)
            print(exc)
        else:
            raise SystemExit("opened without pyusb")
        """
    )
    out = _run(tmp_path, "usb", "-c", script)
    assert out.returncode == 0, out.stderr
    assert out.stdout == (
        "ql+usb://0x04f9:0x209d: needs the pyusb package for USB printers, which is not "
        f"installed — install it with: {INSTALL}\n"
    )


def test_printers_without_optional_libraries_still_open(tmp_path: Path) -> None:
    # A server without the pi extra can still use the file and networked ZPL printers.
    script = textwrap.dedent(
        f"""
        from drivers.printers import open_printer

        open_printer("file://{tmp_path / "printed"}").close()
        open_printer("zpl+tcp://127.0.0.1:9100").close()
        print("opened")
        """
    )
    out = _run(tmp_path, "brother_ql,usb,serial", "-c", script)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "opened\n"


def test_a_broken_library_is_named_too(tmp_path: Path) -> None:
    # Installed, but one of its own imports fails: still one message, not a traceback.
    broken = tmp_path / "site" / "usb"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("import packline_no_such_dependency\n")
    out = _run(tmp_path, "", "-m", "packline", "printer", "status", "ql+usb://0x04f9:0x209d")
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert "needs the pyusb package for USB printers, which cannot be imported" in out.stderr
    assert "packline_no_such_dependency" in out.stderr


def test_the_example_in_the_docs_is_what_a_person_sees(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "printers.md").read_text()
    section = docs.split("## Missing libraries", 1)[1].split("\n## ", 1)[0]
    lines = section.split("```", 2)[1].strip().splitlines()
    command, shown = lines[0], lines[1]
    assert command.startswith("$ packline ")
    out = _run(tmp_path, "usb", "-m", "packline", *command.split()[2:])
    assert out.returncode == 2
    assert out.stderr == shown + "\n"
