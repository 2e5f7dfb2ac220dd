"""A private Mosquitto with an ACL file, for tests of what a broker refuses."""

from __future__ import annotations

from pathlib import Path

from packline.devbroker import MosquittoBroker


class AclBroker(MosquittoBroker):
    """:class:`MosquittoBroker` whose clients may touch only what ``acl`` allows
    (Mosquitto's ``acl_file`` syntax: ``topic readwrite packline/#``); with
    ``anonymous=False`` it refuses every client (there is no password file)."""

    def __init__(self, *, workdir: Path, acl: str, anonymous: bool = True) -> None:
        super().__init__(workdir=workdir)
        self.anonymous = anonymous
        self.acl_file = workdir / "acl"
        self.acl_file.write_text(acl)

    def _write_config(self) -> None:
        super()._write_config()
        # Run as root, Mosquitto reads its ACL file only after becoming user
        # "mosquitto", who cannot enter pytest's private tmp folder; "user root" keeps
        # it as it was started (and has no effect for anyone else).
        text = self.config.read_text() + f"acl_file {self.acl_file}\nuser root\n"
        if not self.anonymous:
            text = text.replace("allow_anonymous true", "allow_anonymous false")
        self.config.write_text(text)
