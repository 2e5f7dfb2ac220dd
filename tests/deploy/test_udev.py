"""The udev rules: syntax (``udevadm verify`` where systemd has it) and what each rule
does to known devices, given as fixtures of their udev attributes."""

from __future__ import annotations

import dataclasses
import fnmatch
import re
import shutil
import subprocess

import pytest

from tests.support.cli import REPO

RULES = REPO / "systemd" / "udev" / "70-packline.rules"
_PAIR = re.compile(r'\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')


@dataclasses.dataclass
class Device:
    """A device as udev sees it: its own keys, and the attributes of it and its parents."""

    subsystem: str
    kernel: str
    attr: dict[str, str] = dataclasses.field(default_factory=dict)
    attrs: dict[str, str] = dataclasses.field(default_factory=dict)  # self and parents
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    action: str = "add"


@dataclasses.dataclass
class Result:
    symlinks: list[str] = dataclasses.field(default_factory=list)
    group: str | None = None
    mode: str | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)


def parse(text: str) -> list[list[tuple[str, str | None, str, str]]]:
    """Each rule as (key, {attribute}, operator, value); a syntax error raises."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pairs, pos = [], 0
        while pos < len(line):
            found = _PAIR.match(line, pos)
            if found is None:
                raise ValueError(f"line {number}: cannot read {line[pos:]!r}")
            pairs.append((found.group(1), found.group(2), found.group(3), found.group(4)))
            pos = found.end()
        rules.append(pairs)
    return rules


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and any(fnmatch.fnmatchcase(value, p) for p in pattern.split("|"))


def _expand(value: str, device: Device) -> str:
    return re.sub(r"%s\{([^}]+)\}", lambda m: device.attrs.get(m.group(1), ""), value)


def apply(rules: list[list[tuple[str, str | None, str, str]]], device: Device) -> Result:
    """What the rules do to ``device`` (the keys these rules use)."""
    out = Result()
    for rule in rules:
        matches = [p for p in rule if p[2] in ("==", "!=")]
        ok = True
        for key, name, op, value in matches:
            have = {
                "ACTION": device.action,
                "SUBSYSTEM": device.subsystem,
                "KERNEL": device.kernel,
                "ATTR": device.attr.get(name or ""),
                "ATTRS": device.attrs.get(name or ""),
                "ENV": device.env.get(name or ""),
            }[key]
            if _glob(have, value) != (op == "=="):
                ok = False
                break
        if not ok:
            continue
        for key, name, op, value in rule:
            if op in ("==", "!="):
                continue
            if key == "SYMLINK":
                out.symlinks.append(_expand(value, device))
            elif key == "GROUP":
                out.group = value
            elif key == "MODE":
                out.mode = value
            elif key == "ENV" and name is not None:
                out.env[name] = value
                device.env[name] = value
            else:
                raise AssertionError(f"the test does not know {key}")
    return out


QL_USB = {"idVendor": "04f9", "idProduct": "209d", "serial": "000K0Z123456", "product": "QL-820NWB"}
DEVICES = {
    "Brother QL-820NWB, usblp": (
        Device("usbmisc", "lp0", attrs=QL_USB),
        ["packline/printer-ql-000K0Z123456"], "lp", {},
    ),
    "Brother QL-700, the USB device": (
        Device("usb", "1-1.3", attr={"idVendor": "04f9", "idProduct": "2042"},
               attrs={"idVendor": "04f9", "idProduct": "2042", "serial": "A1"},
               env={"DEVTYPE": "usb_device"}),
        [], "lp", {"ID_MM_DEVICE_IGNORE": "1"},
    ),
    "Zebra ZD421, usblp": (
        Device("usbmisc", "lp1", attrs={"idVendor": "0a5f", "idProduct": "0181", "serial": "D4J2"}),
        ["packline/printer-zpl-D4J2"], "lp", {},
    ),
    "Honeywell 1900 in CDC-ACM mode": (
        Device("tty", "ttyACM0", attrs={"idVendor": "0c2e", "idProduct": "0b61", "serial": "19A1"}),
        ["packline/scanner-0c2e-19A1"], "dialout", {"ID_MM_DEVICE_IGNORE": "1"},
    ),
    "Zebra DS2208 as a keyboard (HID)": (
        Device("input", "event5", attrs={"idVendor": "05e0", "idProduct": "1200", "serial": "S9"}),
        ["packline/scanner-05e0-S9-kbd"], "input", {},
    ),
    "Datalogic QuickScan in USB-COM mode": (
        Device("tty", "ttyACM1", attrs={"idVendor": "05f9", "idProduct": "4204", "serial": "Q7"}),
        ["packline/scanner-05f9-Q7"], "dialout", {"ID_MM_DEVICE_IGNORE": "1"},
    ),
    "an ordinary keyboard": (
        Device("input", "event2", attrs={"idVendor": "046d", "idProduct": "c31c"}), [], None, {},
    ),
    "a USB modem": (
        Device("tty", "ttyUSB0", attrs={"idVendor": "12d1", "idProduct": "1506"}), [], None, {},
    ),
    "a Brother office printer (not a QL)": (
        Device("usbmisc", "lp2", attrs={"idVendor": "04f9", "idProduct": "0042"}), [], None, {},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(DEVICES))
def test_each_known_device_gets_its_name_and_group(name: str) -> None:
    device, symlinks, group, env = DEVICES[name]
    got = apply(parse(RULES.read_text()), device)
    assert got.symlinks == symlinks
    assert got.group == group
    assert got.mode == ("0660" if group else None)
    assert got.env == env


def test_a_syntax_error_is_caught_by_the_reader() -> None:
    with pytest.raises(ValueError, match="line 1"):
        parse('SUBSYSTEM=="tty" ATTRS{idVendor}=="0c2e"')


def test_the_ipp_usb_quirk_names_the_ql_printers() -> None:
    quirk = (REPO / "systemd" / "udev" / "ipp-usb-packline.conf").read_text()
    assert "[Brother QL-*]" in quirk and re.search(r"^\s*blacklist = true$", quirk, re.M)


def test_udevadm_verify_accepts_the_rules() -> None:
    udevadm = shutil.which("udevadm")
    if udevadm is None:
        pytest.skip("udevadm is not installed")
    help_text = subprocess.run([udevadm, "--help"], capture_output=True, text=True).stdout
    if " verify " not in help_text:
        pytest.skip("this udevadm has no verify (systemd 254 and newer)")
    done = subprocess.run([udevadm, "verify", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
