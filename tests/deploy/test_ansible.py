"""The Ansible playbook: syntax check, ansible-lint, and the station role run in check
mode against this machine, its station.toml read back by the station's own settings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.settings import StationSettings
from packline.settings import load_settings
from tests.support.cli import REPO

ANSIBLE = REPO / "ansible"
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(
    not (BIN / "ansible-playbook").exists(), reason="ansible is not installed (dev extra)"
)


def run(*args: str, cwd: Path = ANSIBLE, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1", **env}
    environ["PATH"] = f"{BIN}{os.pathsep}{environ.get('PATH', '')}"
    return subprocess.run(
        list(args), cwd=cwd, env=environ, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip


def test_site_playbook_passes_the_syntax_check() -> None:
    done = run(str(BIN / "ansible-playbook"), "--syntax-check", "-i", "inventory.example.yml",
               "site.yml")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_ansible_lint_passes() -> None:
    done = run(str(BIN / "ansible-lint"), "--nocolor", "site.yml")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.skipif(shutil.which("apt-get") is None or not Path("/usr/bin/python3").exists(),
                    reason="needs a Debian host")  # fmt: skip
def test_the_station_role_in_check_mode_on_this_machine(tmp_path: Path) -> None:
    play = tmp_path / "station.yml"
    play.write_text(
        "- name: A station, checked on this machine\n  hosts: localhost\n"
        "  gather_facts: false\n  roles:\n    - role: station\n"
    )
    printer = "ql+tcp://192.168.10.21?model=QL-820NWB&label=62x100"
    done = run(
        str(BIN / "ansible-playbook"), "-i", "localhost,", "--connection=local", "--check",
        "--diff", "-e", "ansible_python_interpreter=/usr/bin/python3",
        "-e", "packline_station=bench-07", "-e", f"packline_printer={printer}",
        "-e", "packline_site=wh9", "-e", f"packline_repo_dir={REPO}", str(play),
        cwd=tmp_path, ANSIBLE_ROLES_PATH=str(ANSIBLE / "roles"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+).*failed=(\d+)", done.stdout)
    assert recap is not None and recap.group(3) == "0"
    for task in ("Udev names the scanners and printers", "The agent's unit is installed",
                 "Station.toml is written from the inventory"):  # fmt: skip
        assert f"TASK [station : {task}]" in done.stdout
    # The station.toml it would write, read by the station's own settings loader.
    task = done.stdout.split("TASK [station : Station.toml is written from the inventory]", 1)[1]
    diff = task.split("TASK [", 1)[0]
    lines = diff.splitlines()
    toml = "\n".join(x[1:] for x in lines if x.startswith("+") and not x.startswith("+++"))
    path = tmp_path / "station.toml"
    path.write_text(toml)
    settings = load_settings(StationSettings, path)
    assert (settings.station, settings.site, settings.printer) == ("bench-07", "wh9", printer)
    assert not Path("/etc/packline/station.toml").exists()  # check mode changed nothing
