"""Vendored assets are the files their README names, with their licence beside them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "web" / "static" / "vendor"


def test_every_vendored_file_is_recorded_with_version_licence_and_checksum() -> None:
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \|[^|]+\| ([^|]+) \| ([^|]+) \|[^|]+\| `([0-9a-f]{64})` \|$",
                      readme, flags=re.M)  # fmt: skip
    assert rows, "no vendored file listed"
    listed = {name for name, *_ in rows}
    for name, version, licence, digest in rows:
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} differs from the README"
        assert version.strip() and licence.strip()
        for licence_file in re.findall(r"`([^`]+)`", licence):
            assert (VENDOR / licence_file).is_file(), licence_file
    assert b"Chart.js v4.4.7" in (VENDOR / "chart.umd.js").read_bytes()[:200]
    assert "chart.umd.js" in listed
