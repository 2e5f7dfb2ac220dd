"""People who use central's web page and API: roles, passwords, sessions, API tokens.

Roles (docs/web.md): ``packer``, ``supervisor`` (of one department), ``manager`` and
``admin``. Passwords are kept as argon2 hashes. A browser holds a session (a random
token in an HttpOnly cookie; the database keeps only its SHA-256, with the session's
CSRF token); a script holds an API token made by ``packline central user token``
(likewise kept as its SHA-256 only). Removing a user or changing their password ends
their sessions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import secrets
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from central.db import READ_ONLY, UTCDateTime, metadata, utcnow
from sync.errors import UserError

__all__ = [
    "DEPARTMENTS",
    "ROLES",
    "SESSION_LIFETIME",
    "User",
    "UserRefused",
    "add_user",
    "api_tokens",
    "authenticate",
    "end_session",
    "issue_token",
    "list_users",
    "remove_user",
    "session_user",
    "set_password",
    "start_session",
    "token_user",
    "users",
    "web_sessions",
]

#: Who may do what (docs/web.md, "Roles").
ROLES = ("packer", "supervisor", "manager", "admin")
#: The departments alerts and exceptions are routed to (central/watch/rules.py).
DEPARTMENTS = ("warehouse", "logistics", "customer_service", "operations", "management")
#: How long a browser session lasts without use.
SESSION_LIFETIME = dt.timedelta(hours=12)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_HASHER = PasswordHasher()

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("dept", sa.String(48), nullable=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    # SHA-256 of the cookie's token: a copy of the database opens no session.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("users.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "user_name",
        sa.String(64),
        sa.ForeignKey("users.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
)


class UserRefused(UserError, ValueError):
    """A user cannot be added or changed as asked; ``str()`` says why, on one line."""


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    """Someone logged in: ``name``, ``role`` (one of :data:`ROLES`), ``dept`` (a
    supervisor's department, else None or the department given)."""

    name: str
    role: str
    dept: str | None = None

    def may_see_customers(self) -> bool:
        """Whether this role needs customer names, phones and addresses (C1)."""
        return self.role in ("admin", "manager") or (
            self.role == "supervisor" and self.dept == "customer_service"
        )

    def as_json(self) -> dict[str, Any]:
        """``{"name", "role", "dept"}``."""
        return {"name": self.name, "role": self.role, "dept": self.dept}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check(name: str, role: str, dept: str | None) -> None:
    if not _NAME.match(name):
        raise UserRefused(
            f"user name {name!r}: 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    if role not in ROLES:
        raise UserRefused(f"role {role!r}: must be one of {', '.join(ROLES)}")
    if dept is not None and dept not in DEPARTMENTS:
        raise UserRefused(f"department {dept!r}: must be one of {', '.join(DEPARTMENTS)}")
    if role == "supervisor" and dept is None:
        raise UserRefused(f"a supervisor needs --dept ({', '.join(DEPARTMENTS)})")


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise UserRefused("password: at least 8 characters")
    if len(password) > 1024:
        raise UserRefused("password: at most 1024 characters")


def add_user(
    engine: Engine, name: str, *, role: str, password: str, dept: str | None = None
) -> User:
    """Add a user; :class:`UserRefused` for a bad name, role, department or password,
    or a name already taken."""
    _check(name, role, dept)
    _check_password(password)
    now = utcnow()
    with engine.begin() as conn:
        taken = conn.execute(sa.select(users.c.name).where(users.c.name == name)).first()
        if taken is not None:
            raise UserRefused(f"user {name!r} exists already")
        conn.execute(
            users.insert().values(
                name=name,
                role=role,
                dept=dept,
                password_hash=_HASHER.hash(password),
                created_at=now,
                updated_at=now,
            )
        )
    return User(name=name, role=role, dept=dept)


def set_password(engine: Engine, name: str, password: str) -> None:
    """Change ``name``'s password and end their sessions."""
    _check_password(password)
    with engine.begin() as conn:
        done = conn.execute(
            users.update()
            .where(users.c.name == name)
            .values(password_hash=_HASHER.hash(password), updated_at=utcnow())
        ).rowcount
        if not done:
            raise UserRefused(f"no user {name!r}")
        conn.execute(web_sessions.delete().where(web_sessions.c.user_name == name))


def remove_user(engine: Engine, name: str) -> None:
    """Remove ``name`` with their sessions and API tokens."""
    with engine.begin() as conn:
        conn.execute(web_sessions.delete().where(web_sessions.c.user_name == name))
        conn.execute(api_tokens.delete().where(api_tokens.c.user_name == name))
        if not conn.execute(users.delete().where(users.c.name == name)).rowcount:
            raise UserRefused(f"no user {name!r}")


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every user by name: ``name``, ``role``, ``dept``, ``created_at`` (no hashes)."""
    query = sa.select(users.c.name, users.c.role, users.c.dept, users.c.created_at).order_by(
        users.c.name
    )
    with engine.connect().execution_options(**READ_ONLY) as conn:
        rows = conn.execute(query).mappings().all()
    return [{**row, "created_at": row["created_at"].isoformat()} for row in rows]


def _user(row: Any) -> User:
    return User(name=row.name, role=row.role, dept=row.dept)


def authenticate(engine: Engine, name: str, password: str) -> User | None:
    """The user when ``password`` is ``name``'s, else None (the same time either way)."""
    with engine.connect().execution_options(**READ_ONLY) as conn:
        row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        # Hash anyway, so an unknown name takes as long as a wrong password.
        _HASHER.hash(password)
        return None
    try:
        _HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _HASHER.check_needs_rehash(row.password_hash):
        with engine.begin() as conn:
            conn.execute(
                users.update()
                .where(users.c.name == name)
                .values(password_hash=_HASHER.hash(password))
            )
    return _user(row)


def start_session(engine: Engine, user: User, *, now: dt.datetime | None = None) -> tuple[str, str]:
    """A new session for ``user``: ``(cookie token, CSRF token)``."""
    now = now or utcnow()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(web_sessions.delete().where(web_sessions.c.expires_at < now))
        conn.execute(
            web_sessions.insert().values(
                token_hash=_digest(token),
                user_name=user.name,
                csrf=csrf,
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
    return token, csrf


def session_user(
    engine: Engine, token: str, *, now: dt.datetime | None = None
) -> tuple[User, str] | None:
    """``(user, CSRF token)`` of a live session, else None."""
    now = now or utcnow()
    query = (
        sa.select(users.c.name, users.c.role, users.c.dept, web_sessions.c.csrf)
        .join(users, users.c.name == web_sessions.c.user_name)
        .where(web_sessions.c.token_hash == _digest(token), web_sessions.c.expires_at > now)
    )
    with engine.connect().execution_options(**READ_ONLY) as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return _user(row), str(row.csrf)


def end_session(engine: Engine, token: str) -> None:
    """Log out: the session is gone."""
    with engine.begin() as conn:
        conn.execute(web_sessions.delete().where(web_sessions.c.token_hash == _digest(token)))


def issue_token(engine: Engine, name: str) -> str:
    """A new API token for ``name`` (shown once; only its hash is kept)."""
    token = "plk_" + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first() is None:
            raise UserRefused(f"no user {name!r}")
        conn.execute(
            api_tokens.insert().values(
                token_hash=_digest(token), user_name=name, created_at=utcnow()
            )
        )
    return token


def token_user(engine: Engine, token: str) -> User | None:
    """The user an API token belongs to, else None."""
    query = (
        sa.select(users.c.name, users.c.role, users.c.dept)
        .join(api_tokens, users.c.name == api_tokens.c.user_name)
        .where(api_tokens.c.token_hash == _digest(token))
    )
    with engine.connect().execution_options(**READ_ONLY) as conn:
        row = conn.execute(query).first()
    return None if row is None else _user(row)
