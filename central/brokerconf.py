"""A ready Mosquitto 2.x configuration for one site: one credential per client, least
privilege (``packline broker config``; docs/broker.md).

The output folder holds ``mosquitto.conf`` (absolute paths, persistence in the folder),
``passwd`` (hashed by ``mosquitto_passwd``, which Debian's mosquitto package ships),
``acl``, and ``secrets/{name}.url`` (0600, in a 0700 folder): each client's broker URL
with its password, for ``mqtt_url_file``. Central's client is ``central``, a station's
is the station's name, a supervisor's is the supervisor's name.

The folder is the record of the passwords: writing it again keeps every password
found in ``secrets/`` and makes new ones only for new clients and for those rotated.
A client no longer named loses its secrets file, so its password stops working.
Every topic in the ACL comes from :mod:`sync.topics`.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import secrets
import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from sync import topics
from sync.errors import UserError
from sync.mqtt import parse_mqtt_url

__all__ = [
    "CENTRAL",
    "BrokerConfigError",
    "BrokerSetup",
    "ClientOutcome",
    "Clients",
    "TlsFiles",
    "acl_text",
    "parse_names",
    "write_broker_config",
]

CENTRAL = "central"
"""The user name of central's client (every central worker uses it)."""

NAME = re.compile(r"[A-Za-z0-9_.-]+")
# Station and supervisor names are broker user names and parts of topics: no MQTT
# wildcards or separators, nothing the passwd file or a URL would need to escape.

STATION_RIGHTS: tuple[tuple[str, Callable[[str, str], str]], ...] = (
    ("write", topics.events),
    ("write", topics.status),  # its retained status and its last will
    ("read", topics.ack),
    ("read", topics.orders),
)
"""What a station may do, each on its own topics only."""

PASSWORD_BYTES = 24  # 192 random bits, 32 URL-safe characters


class BrokerConfigError(UserError, ValueError):
    """What was asked cannot be written (a bad name, a missing file); ``str()`` is one
    line naming the problem."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Clients:
    """Who may use the broker of ``site``: its stations, its supervisors and central."""

    site: str
    stations: tuple[str, ...]
    supervisors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_name(self.site, what="site")
        if not self.stations:
            raise BrokerConfigError("name at least one station")
        seen: set[str] = set()
        for what, names in (("station", self.stations), ("supervisor", self.supervisors)):
            for name in names:
                _check_name(name, what=what)
                if name == CENTRAL:
                    raise BrokerConfigError(
                        f"{what} name {CENTRAL!r} is taken: it is central's own client"
                    )
                if name in seen:
                    raise BrokerConfigError(f"{name!r} is named twice: each client needs a name")
                seen.add(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Every client's user name: central first, then stations, then supervisors."""
        return (CENTRAL, *self.stations, *self.supervisors)


def _check_name(name: str, *, what: str) -> None:
    if not name:
        raise BrokerConfigError(f"a {what} name is empty")
    if not NAME.fullmatch(name):
        raise BrokerConfigError(
            f"{what} name {name!r} may hold only letters, digits, '_', '.' and '-'"
            " (no spaces, '/', '+' or '#': it is part of MQTT topics)"
        )


def parse_names(text: str | None, *, what: str) -> tuple[str, ...]:
    """``"a,b,c"`` as names (spaces around commas allowed); ``None`` or ``""`` is none.

    Each name is checked as :class:`Clients` does, so the message names the option's
    words (``what``: ``station``, ``supervisor``).
    """
    if text is None or not text.strip():
        return ()
    names = tuple(part.strip() for part in text.split(","))
    for name in names:
        _check_name(name, what=what)
    return names


@dataclasses.dataclass(frozen=True, kw_only=True)
class TlsFiles:
    """The broker's certificate and key (PEM), and optionally the certificate
    authority clients are to trust (when it is not one the system trusts already)."""

    cert: Path
    key: Path
    ca: Path | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientOutcome:
    """What became of one client's password: ``new``, ``kept``, ``rotated`` or
    ``removed`` (no longer named; its secrets file deleted)."""

    name: str
    outcome: str
    secrets_file: Path


@dataclasses.dataclass(frozen=True, kw_only=True)
class BrokerSetup:
    """What :func:`write_broker_config` wrote."""

    out: Path
    config: Path
    passwd: Path
    acl: Path
    clients: tuple[ClientOutcome, ...]
    url: str
    """The broker's URL, without credentials (what every secrets file points at)."""

    @property
    def command(self) -> str:
        """How to run the broker."""
        return f"mosquitto -c {self.config}"


# -- the ACL -------------------------------------------------------------------------


def acl_text(clients: Clients) -> str:
    """Mosquitto's ``acl_file`` for ``clients``.

    Mosquitto checks a client's own ``topic`` lines first (denials before grants), then
    the ``pattern`` lines, which apply to every client with ``%u`` replaced by its user
    name. The station rights are patterns, so each station gets exactly its own topics;
    central and the supervisors are denied those topics under their own names, so no
    one else can pose as a station. Anything not granted is refused.
    """
    site = clients.site
    lines = [
        f"# Mosquitto ACL of packline site {site}, written by `packline broker config`.",
        "# Each client logs in with its own name; what is not granted here is refused.",
        "# Mosquitto reads a client's own `topic` lines first (denials first), then the",
        "# `pattern` lines, which apply to every client with %u replaced by its user name.",
        "",
        "# Stations (user name = station name): publish only their own events and status",
        "# (the status is retained and is also their last will); read only their own acks",
        "# and orders.",
        *(f"pattern {access} {topic(site, '%u')}" for access, topic in STATION_RIGHTS),
        "",
        "# Central: reads every station's events (also through the shared subscription",
        "# $share/packline-central/..., which Mosquitto checks without its $share/group/",
        "# prefix) and status; writes acks, orders and alerts; reads alert acknowledgements.",
        f"user {CENTRAL}",
        *_not_a_station(site, CENTRAL),
        f"topic read {topics.subscription(site, 'events')}",
        f"topic read {topics.subscription(site, 'status')}",
        f"topic write {topics.subscription(site, 'ack')}",
        f"topic write {topics.subscription(site, 'orders')}",
        f"topic write {topics.alerts(site, '+', '+')}",
        f"topic read {topics.alert_ack(site)}",
    ]
    for name in clients.supervisors:
        lines += [
            "",
            f"# Supervisor {name}: reads every alert, writes only acknowledgements.",
            f"user {name}",
            *_not_a_station(site, name),
            f"topic read {topics.alert_tree(site)}",
            f"topic write {topics.alert_ack(site)}",
        ]
    return "\n".join(lines) + "\n"


def _not_a_station(site: str, name: str) -> list[str]:
    # The station patterns would grant these under the client's own name.
    return [f"topic deny {topic(site, name)}" for _access, topic in STATION_RIGHTS]


# -- mosquitto.conf ------------------------------------------------------------------


def _config_text(
    *,
    out: Path,
    site: str,
    port: int,
    bind: str | None,
    tls: TlsFiles | None,
    user: str,
) -> str:
    listener = f"listener {port} {bind}" if bind else f"listener {port}"
    lines = [
        f"# Mosquitto 2.x for packline site {site}, written by `packline broker config`.",
        f"# Run: mosquitto -c {out / 'mosquitto.conf'}",
        "# A running broker reads passwd and acl again on SIGHUP (after a --rotate).",
        "",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {out / 'passwd'}",
        f"acl_file {out / 'acl'}",
        "",
        listener,
    ]
    if tls is not None:
        lines += [
            f"certfile {tls.cert}",
            f"keyfile {tls.key}",
            "tls_version tlsv1.2",
        ]
    lines += [
        "",
        "# Queued messages and sessions survive a restart; packline never relies on it",
        "# (the outbox is resent until central's ack), so saving once a minute is enough.",
        "persistence true",
        f"persistence_location {out}",
        "autosave_interval 60",
        "",
        "# Started as root, Mosquitto switches to this user, who owns this folder.",
        f"user {user}",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
    ]
    return "\n".join(lines) + "\n"


# -- passwords -----------------------------------------------------------------------


def _new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def _kept_password(path: Path, name: str) -> str | None:
    """The password in an existing secrets file, None when there is none."""
    if not path.exists():
        return None
    fix = f"remove it or give --rotate {name}"
    try:
        broker = parse_mqtt_url(path.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError, ValueError):
        raise BrokerConfigError(f"{path} holds no broker URL: {fix}") from None
    if broker.username != name or not broker.password:
        raise BrokerConfigError(f"{path} holds no password of client {name!r}: {fix}")
    return broker.password


def _mosquitto_passwd() -> str:
    found = shutil.which("mosquitto_passwd") or shutil.which(
        "mosquitto_passwd", path="/usr/bin:/usr/local/bin"
    )
    if found is None:
        raise BrokerConfigError(
            "mosquitto_passwd is not installed: install the mosquitto package, which ships it"
        )
    return found


def _hashed(passwords: dict[str, str], *, folder: Path) -> str:
    """The passwd file's text: ``name:$7$...`` lines hashed by ``mosquitto_passwd``.

    The plain text goes through a 0600 file in ``folder`` (never the command line,
    where ``ps`` would show it), removed at once.
    """
    tool = _mosquitto_passwd()
    plain = folder / f".passwd.{os.getpid()}.plain"
    try:
        _write_private(plain, "".join(f"{n}:{p}\n" for n, p in passwords.items()))
        done = subprocess.run(
            [tool, "-U", str(plain)], capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            reason = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
            raise BrokerConfigError(f"mosquitto_passwd could not hash the passwords: {reason}")
        text = plain.read_text(encoding="utf-8")
    finally:
        plain.unlink(missing_ok=True)
    names = [line.split(":", 1)[0] for line in text.splitlines() if line]
    if names != list(passwords) or any(not line.split(":", 1)[1] for line in text.splitlines()):
        raise BrokerConfigError("mosquitto_passwd wrote an unexpected passwd file")
    return text


# -- files ---------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` afresh with mode 0600 (never readable by others, not even for
    a moment) and ``text`` in it."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _replace(path: Path, text: str, *, mode: int) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, then a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        _write_private(tmp, text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _check_tls(tls: TlsFiles) -> TlsFiles:
    cert, key = tls.cert.resolve(), tls.key.resolve()
    for what, path in (("--tls-cert", cert), ("--tls-key", key), ("--tls-ca", tls.ca)):
        if path is not None and not path.is_file():
            raise BrokerConfigError(f"{what} {path}: no such file")
    try:
        # No passphrase: Mosquitto could not ask for one either.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=b"")
    except ssl.SSLError as exc:
        raise BrokerConfigError(
            f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate and its"
            f" unencrypted key ({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise BrokerConfigError(f"cannot read {cert} or {key}: {exc.strerror or exc}") from None
    ca = tls.ca.resolve() if tls.ca is not None else None
    if ca is not None:
        try:
            ssl.create_default_context(cafile=ca)
        except (ssl.SSLError, OSError):
            raise BrokerConfigError(f"--tls-ca {ca} holds no PEM certificate") from None
    return TlsFiles(cert=cert, key=key, ca=ca)


def _owner(user: str | None) -> pwd.struct_passwd:
    me = pwd.getpwuid(os.geteuid())
    if user is None or user == me.pw_name:
        return me
    try:
        owner = pwd.getpwnam(user)
    except KeyError:
        raise BrokerConfigError(f"--user {user}: no such user on this machine") from None
    if os.geteuid() != 0:
        raise BrokerConfigError(
            f"--user {user}: only root can hand the broker's files to another user"
        )
    return owner


def write_broker_config(
    *,
    out: Path,
    clients: Clients,
    host: str,
    port: int | None = None,
    bind: str | None = None,
    tls: TlsFiles | None = None,
    rotate: Iterable[str] = (),
    user: str | None = None,
) -> BrokerSetup:
    """Write (or rewrite) the broker configuration of ``clients`` into ``out``.

    ``host`` and ``port`` are what clients connect to (the URLs in ``secrets/``; with
    TLS the host must be a name in the certificate); ``port`` defaults to 8883 with
    TLS, 1883 without. ``bind`` is the address the broker listens on (default: every
    address). Passwords in ``out/secrets`` are kept except for the names in
    ``rotate``. ``user`` owns the broker's files and is who Mosquitto runs as when
    started by root (default: whoever runs this). Raises :class:`BrokerConfigError`
    before writing anything when what was asked cannot work.
    """
    out = out.resolve()
    rotate = list(rotate)
    for name in rotate:
        if name not in clients.names:
            known = ", ".join(clients.names)
            raise BrokerConfigError(f"--rotate {name}: no such client (clients: {known})")
    if not host or any(c.isspace() or c in "/@?#" for c in host):
        raise BrokerConfigError(f"--host {host!r} is not a host name or address")
    port = port if port is not None else (8883 if tls is not None else 1883)
    if not 0 < port <= 65535:
        raise BrokerConfigError(f"--port {port} is out of range (1 to 65535)")
    if "\n" in str(out):
        raise BrokerConfigError("the output folder's path holds a line break")
    tls = _check_tls(tls) if tls is not None else None
    owner = _owner(user)
    secrets_dir = out / "secrets"

    scheme = "mqtts" if tls is not None else "mqtt"
    url_host = f"[{host}]" if ":" in host else host  # an IPv6 address
    base = f"{scheme}://{url_host}:{port}"
    query = "?ca=ca.pem" if tls is not None and tls.ca is not None else ""

    passwords: dict[str, str] = {}
    outcomes: list[ClientOutcome] = []
    for name in clients.names:
        path = secrets_dir / f"{name}.url"
        kept = None if name in rotate else _kept_password(path, name)
        if name in rotate:
            outcome = "rotated" if path.exists() else "new"
        else:
            outcome = "kept" if kept is not None else "new"
        passwords[name] = kept or _new_password()
        outcomes.append(ClientOutcome(name=name, outcome=outcome, secrets_file=path))
    gone = sorted(p for p in secrets_dir.glob("*.url") if p.stem not in passwords)
    _mosquitto_passwd()  # missing: say so before anything is written

    try:
        out.mkdir(parents=True, exist_ok=True)
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(secrets_dir, 0o700)
        hashed = _hashed(passwords, folder=out)
        for name, password in passwords.items():
            url = f"{scheme}://{name}:{password}@{url_host}:{port}{query}"
            _replace(secrets_dir / f"{name}.url", url + "\n", mode=0o600)
        for path in gone:
            path.unlink()
            outcomes.append(ClientOutcome(name=path.stem, outcome="removed", secrets_file=path))
        ca_copy = secrets_dir / "ca.pem"
        if tls is not None and tls.ca is not None:
            _replace(ca_copy, tls.ca.read_text(encoding="utf-8"), mode=0o644)
        else:
            ca_copy.unlink(missing_ok=True)
        _replace(out / "passwd", hashed, mode=0o600)
        _replace(out / "acl", acl_text(clients), mode=0o644)
        config = _config_text(
            out=out, site=clients.site, port=port, bind=bind, tls=tls, user=owner.pw_name
        )
        _replace(out / "mosquitto.conf", config, mode=0o644)
        _hand_over(out, owner)
    except OSError as exc:
        raise BrokerConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    return BrokerSetup(
        out=out,
        config=out / "mosquitto.conf",
        passwd=out / "passwd",
        acl=out / "acl",
        clients=tuple(outcomes),
        url=base,
    )


def _hand_over(out: Path, owner: pwd.struct_passwd) -> None:
    """Give the folder and what the broker reads and writes in it to ``owner``; the
    secrets stay with whoever ran the command."""
    if os.geteuid() != 0:
        return
    broker_files: Sequence[Path] = (
        out,
        out / "passwd",
        out / "acl",
        out / "mosquitto.conf",
        out / "mosquitto.db",
    )
    for path in broker_files:
        if path.exists():
            os.chown(path, owner.pw_uid, owner.pw_gid)
