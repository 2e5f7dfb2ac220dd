"""``packline central user``: the real console script adds, lists, changes and removes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from central.db import open_db
from central.users import authenticate, token_user
from tests.support.cli import REPO

PACKLINE = str(REPO / ".venv" / "bin" / "packline")


def user(db: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PACKLINE, "central", "user", *args, "--db-url", db],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def test_add_list_passwd_token_remove(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'central.db'}"
    added = user(
        db, "add", "sup-li", "--role", "supervisor", "--dept", "warehouse", "--password-stdin",
        stdin="first password\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "added sup-li: supervisor of warehouse"
    listed = json.loads(user(db, "list", "--json").stdout)["users"]
    assert [(u["name"], u["role"], u["dept"]) for u in listed] == [
        ("sup-li", "supervisor", "warehouse")
    ]
    changed = user(db, "passwd", "sup-li", "--password-stdin", stdin="second password\n")
    assert changed.returncode == 0, changed.stderr
    token = user(db, "token", "sup-li").stdout.strip()
    assert token.startswith("plk_")
    engine = open_db(db)
    try:
        assert authenticate(engine, "sup-li", "first password") is None
        assert authenticate(engine, "sup-li", "second password") is not None
        found = token_user(engine, token)
        assert found is not None and found.name == "sup-li"
        assert user(db, "remove", "sup-li").returncode == 0
        assert token_user(engine, token) is None  # its tokens went with it
    finally:
        engine.dispose()


def test_mistakes_are_one_line_and_exit_2(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'central.db'}"
    cases = [
        (("add", "x", "--role", "boss", "--password-stdin"), "pw123456\n", "--role 'boss'"),
        (("add", "x", "--role", "supervisor", "--password-stdin"), "pw123456\n", "needs --dept"),
        (("add", "x", "--role", "packer", "--password-stdin"), "short\n", "at least 8"),
        (("add", "x", "--role", "packer", "--password-stdin"), "", "gave no password"),
        (("add", "x y", "--role", "packer", "--password-stdin"), "pw123456\n", "user name"),
        (("add", "x", "--role", "packer"), None, "use --password-stdin"),
        (("remove", "ghost"), None, "no user 'ghost'"),
        (("token", "ghost"), None, "no user 'ghost'"),
    ]
    for args, stdin, words in cases:
        done = user(db, *args, stdin=stdin)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.count("\n") == 1 and words in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    first = user(db, "add", "x", "--role", "packer", "--password-stdin", stdin="pw123456\n")
    assert first.returncode == 0
    again = user(db, "add", "x", "--role", "packer", "--password-stdin", stdin="pw123456\n")
    assert again.returncode == 2 and "exists already" in again.stderr
