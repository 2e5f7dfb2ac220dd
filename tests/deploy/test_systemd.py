"""The systemd units as systemd reads them: ``systemd-analyze verify`` on every unit and
``systemd-analyze security`` at "OK" or better for every service."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import REPO

UNITS = sorted((REPO / "systemd").glob("*.service")) + sorted((REPO / "systemd").glob("*.timer"))
ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
HARDENING = ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
             "ProtectHome=yes", "CapabilityBoundingSet=\n", "User=packline")  # fmt: skip
INSTALLED = "/opt/packline/venv/bin/packline"


def staged(tmp_path: Path) -> Path:
    """The units with the installed console script replaced by this checkout's (verify
    checks that the program exists)."""
    here = REPO / ".venv" / "bin" / "packline"
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED, str(here)))
    return tmp_path


def test_the_units_are_there() -> None:
    names = {u.name for u in UNITS}
    assert {
        "packline-edge.service", "packline-central.service",
        "packline-central-worker@.service", "packline-backup-incremental.timer",
        "packline-backup-full.timer",
    } <= names  # fmt: skip
    for unit in UNITS:
        text = unit.read_text()
        if unit.suffix == ".service" and "Type=notify" in text:
            assert re.search(r"^WatchdogSec=\d+", text, re.M), unit.name
            assert "Restart=on-failure" in text and "StartLimitBurst=" in text, unit.name
        if unit.suffix == ".service":
            for hardening in HARDENING:
                assert hardening in text, (unit.name, hardening)


def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    where = staged(tmp_path)
    names = [u.name for u in UNITS]
    done = subprocess.run(
        [str(ANALYZE), "verify", "--man=no", *names],
        cwd=where, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr


@pytest.mark.parametrize(
    "unit", [u.name for u in UNITS if u.suffix == ".service" and "@" not in u.name]
)
def test_each_service_is_hardened_to_ok_or_better(tmp_path: Path, unit: str) -> None:
    where = staged(tmp_path)
    done = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", "--no-pager", str(where / unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", done.stdout)
    assert found is not None, done.stdout[-2000:] + done.stderr
    assert found.group(2) in ("OK", "SAFE"), found.group(0)
