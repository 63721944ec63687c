"""The database password's part of `python -m tools.rotate`: a new password, set with ALTER ROLE as a SCRAM
verifier, every holder's value rewritten, and the old password proven refused.

Why a verifier: `ALTER ROLE ... PASSWORD 'plain'` sends the plain password to the server, where the statement
can land in the server log, `pg_stat_activity` and `pg_stat_statements`
(https://www.postgresql.org/docs/15/sql-alterrole.html, Notes: "the password will be transmitted to the server in
cleartext, and it might also be logged"). libpq's `PQencryptPasswordConn` (psycopg's
`PGconn.encrypt_password`, https://www.postgresql.org/docs/15/libpq-misc.html) computes the SCRAM-SHA-256
verifier on the client - salted and iterated, as the server would store it - so the statement carries only the
verifier and the password never leaves this process except into the stack config as a Pulumi secret.

PostgreSQL keeps a session open after its role's password changes; a leaked password may have opened one. Once
the apps run on the new password, `terminate_old_sessions` ends the role's client sessions that began before
the ALTER ROLE (replication connections are left alone: a replica's own credential is not this one).
"""

from __future__ import annotations

import secrets
import urllib.parse
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

CONNECT_TIMEOUT_SECONDS = 10
PASSWORD_BYTES = 32
MIN_PASSWORD_LENGTH = 12
"""A shorter old password could be a substring of an unrelated value: its holders are refused, not guessed."""


class DatabaseError(Exception):
    """The database refused or could not be reached; the message names no secret."""


@dataclass(frozen=True)
class Login:
    """Where and as whom the stack's database URL logs in (no password)."""

    url: str
    user: str
    host: str


def new_password() -> str:
    """A new password: 256 random bits, URL-safe (it goes into URLs unescaped)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def login(url: str) -> Login:
    """The login a libpq URL names; DatabaseError when it names no user or password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise DatabaseError("the database URL is not a libpq URL") from None
    if not parts.get("user") or not parts.get("password"):
        raise DatabaseError("the database URL names no user and password to rotate")
    return Login(url, str(parts["user"]), str(parts.get("host") or "localhost"))


def password_of(url: str) -> str:
    """The password a database URL holds."""
    return str(conninfo_to_dict(url)["password"])


def replaced(value: str, old: str, new: str) -> str | None:
    """`value` with the old password replaced by the new one (as it is, or percent-encoded in a URL), or None when
    it holds no old password."""
    forms = {old, urllib.parse.quote(old, safe=""), urllib.parse.quote_plus(old)}
    if not any(form in value for form in forms):
        return None
    for form in sorted(forms, key=len, reverse=True):
        value = value.replace(form, new)
    return value


def _connect(target: Login, password: str) -> psycopg.Connection:
    return psycopg.connect(target.url, password=password, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)


def accepts(target: Login, password: str) -> bool:
    """Whether the server lets the role log in with `password`; DatabaseError when it cannot be asked at all."""
    try:
        with _connect(target, password):
            return True
    except psycopg.OperationalError as exc:
        text = str(exc)
        if "password authentication failed" in text or "authentication failed" in text:
            return False
        raise DatabaseError(f"cannot reach the database at {target.host} as {target.user}: "
                            f"{text.strip().splitlines()[-1][:200] if text.strip() else type(exc).__name__}") from None


def alter_password(target: Login, old: str, new: str) -> datetime:
    """ALTER ROLE the URL's user to the new password (a SCRAM verifier, computed here), logged in with the old
    one; the server's time just before the change."""
    with _connect(target, old) as connection:
        row = connection.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        verifier = connection.pgconn.encrypt_password(new.encode(), target.user.encode(), b"scram-sha-256")
        connection.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(target.user), sql.Literal(verifier.decode())))
        changed: datetime = row[0]
        return changed


def terminate_old_sessions(target: Login, password: str, before: datetime) -> int:
    """End the role's client sessions that began before `before` (the ALTER ROLE); how many were ended."""
    with _connect(target, password) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND backend_type = "
            "'client backend' AND pid <> pg_backend_pid() AND backend_start < %s", (target.user, before)).fetchall()
    return sum(1 for (ended,) in rows if ended)
