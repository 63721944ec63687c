"""Connecting to PostgreSQL without exposing the password, and reading what a manifest records."""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backup_job.errors import ExitCode, JobError
from core.contracts import JobEnv

# libpq connection keywords and the environment variables libpq reads for them
# (https://www.postgresql.org/docs/current/libpq-envars.html). pg_dump and pg_restore get the
# connection only through these, so nothing of it shows on a command line.
_LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE", "user": "PGUSER",
    "password": "PGPASSWORD", "passfile": "PGPASSFILE", "require_auth": "PGREQUIREAUTH",
    "channel_binding": "PGCHANNELBINDING", "service": "PGSERVICE", "options": "PGOPTIONS",
    "application_name": "PGAPPNAME", "sslmode": "PGSSLMODE", "requiressl": "PGREQUIRESSL",
    "sslnegotiation": "PGSSLNEGOTIATION", "sslcompression": "PGSSLCOMPRESSION", "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY", "sslcertmode": "PGSSLCERTMODE", "sslrootcert": "PGSSLROOTCERT", "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR", "sslsni": "PGSSLSNI", "requirepeer": "PGREQUIREPEER",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION", "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION", "connect_timeout": "PGCONNECT_TIMEOUT", "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS", "load_balance_hosts": "PGLOADBALANCEHOSTS",
}

# Tables whose rows a dump carries: ordinary tables outside the system schemas,
# and not members of an extension (pg_dump leaves those to CREATE EXTENSION).
ROW_COUNT_TABLES = """
SELECT c.oid::bigint, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 2, 3
"""


@dataclass(frozen=True)
class Database:
    """A database to dump or restore into, from a libpq URL that is never logged nor put on a command line."""

    url: str

    @classmethod
    def resolve(cls, url: str | None, url_file: str | None, env_var: JobEnv) -> Database:
        """The URL from the flag, else a mounted secret file, else `env_var` / `<env_var>_FILE`."""
        url_file = url_file or os.environ.get(env_var.file)
        if url is None and url_file:
            try:
                url = Path(url_file).read_text().strip()
            except OSError as exc:
                raise JobError(ExitCode.USAGE, f"cannot read the database URL file: {exc.strerror}") from None
        url = url or os.environ.get(env_var)
        if not url:
            raise JobError(
                ExitCode.USAGE,
                f"no database URL: pass --database-url, --database-url-file, or set {env_var} or {env_var.file}",
            )
        scheme = re.match(r"^postgres(?:ql)?://", url)
        if scheme:
            authority = re.split(r"[/?#]", url[scheme.end():], maxsplit=1)[0]
            if authority.count("@") > 1:
                # libpq would take the password's tail for the host and print it in its error: never get that far.
                raise JobError(ExitCode.USAGE, "the database URL has an unencoded '@' in its user or password: "
                                               "percent-encode it as %40")
        try:
            params = conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            raise JobError(ExitCode.USAGE, "the database URL is not a valid libpq connection string") from None
        unpassable = sorted(set(params) - set(_LIBPQ_ENV))
        if unpassable:
            raise JobError(ExitCode.USAGE, f"the database URL sets {', '.join(unpassable)}, which pg_dump and "
                                           "pg_restore could only get on their command line; remove it from the URL")
        if not str(params.get("connect_timeout", "10")).strip().isdigit():
            raise JobError(ExitCode.USAGE, "the database URL's connect_timeout must be a whole number of seconds")
        return cls(url)

    def with_database(self, dbname: str) -> Database:
        """The same connection to another database of the server."""
        return Database(make_conninfo(self.url, dbname=dbname))

    @property
    def params(self) -> dict[str, str]:
        """The URL's libpq keywords."""
        return {k: str(v) for k, v in conninfo_to_dict(self.url).items()}

    def child_env(self) -> dict[str, str]:
        """Environment for pg_dump / pg_restore: the connection as PG* variables, password included.

        Child processes then take no connection arguments, so nothing secret shows in `ps`.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        for keyword, value in self.params.items():
            if keyword in _LIBPQ_ENV:
                env[_LIBPQ_ENV[keyword]] = value
        return env

    def scrub(self, text: str) -> str:
        """`text` with the password and the full URL removed (for error messages and logs)."""
        password = self.params.get("password")
        text = text.replace(self.url, "[database-url]")
        if password:
            text = text.replace(password, "[password]")
        return re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1[password]@", text)

    def connect(self) -> psycopg.Connection:
        """Open a connection; an unreachable server or refused login is ExitCode.DATABASE_UNREACHABLE."""
        try:
            return psycopg.connect(self.url, connect_timeout=int(self.params.get("connect_timeout", 10)))
        except psycopg.OperationalError as exc:
            raise JobError(ExitCode.DATABASE_UNREACHABLE, f"database unreachable: {self.scrub(str(exc)).strip()}") from None


def exit_status(code: int) -> str:
    """How a child process ended, for a message: `exited 1`, or `was killed by SIGKILL`."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited {code}"


def server_version(connection: psycopg.Connection) -> str:
    """The server's version string (e.g. '15.18')."""
    row = connection.execute("SHOW server_version").fetchone()
    assert row is not None  # SHOW always returns one row
    return row[0]


def table_rows(connection: psycopg.Connection) -> list[tuple[int, str, str, int]]:
    """(OID, schema, table, exact rows) of every table a dump carries rows of, in the connection's snapshot."""
    found = []
    for oid, schema, table in connection.execute(ROW_COUNT_TABLES).fetchall():
        query = psycopg.sql.SQL("SELECT count(*) FROM ONLY {}.{}").format(
            psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table)
        )
        row = connection.execute(query).fetchone()
        assert row is not None  # count(*) always returns one row
        found.append((oid, schema, table, row[0]))
    return found


def row_counts(connection: psycopg.Connection) -> dict[str, int]:
    """Exact rows per table, keyed `schema.table`, in the connection's current snapshot."""
    return {f"{schema}.{table}": rows for _, schema, table, rows in table_rows(connection)}
