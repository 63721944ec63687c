"""PostgreSQL 15 in a site: the US primary and the EU streaming replica (pg_basebackup -R).

Debian's binaries run as the unprivileged `postgres` user (initdb refuses root), inside the site's
namespace, listening on the site's address only; the drill itself talks to each server through its Unix
socket in the private folder. The data checksums are on, so the corruption scenario's damage is detected
the way a production server detects it. The password lives in files readable by root or postgres only and
is never printed: URLs that hold it go to the backup job and the app stand-ins as files.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from tools.drill.world import ADDRESSES, SUBNET_BITS, USAGE, DrillError, World, in_namespace, run, secret

PORT = 5432
ROLE = "raptorflow"
START_TIMEOUT_SECONDS = 120
WAL_SEGMENT_MB = 1
"""initdb's WAL segment size: the PITR stand-in archives a segment whenever archive_timeout switches it, whole, so
a small segment keeps a few seconds' WAL from costing 16 MB of archive."""


def bindir() -> Path:
    """Debian's PostgreSQL 15 binaries (the version the backup job's pg_dump must match)."""
    found = sorted(glob.glob("/usr/lib/postgresql/15/bin/initdb"))
    if not found:
        raise DrillError(USAGE, "PostgreSQL 15 server binaries not found: apt-get install postgresql-15")
    return Path(found[0]).parent


class Cluster:
    """One PostgreSQL cluster of a site."""

    def __init__(self, world: World, site: str, password: str) -> None:
        self.world, self.site, self.password = world, site, password
        self.bindir = bindir()
        self.home = world.folder / site / "postgres"
        self.data = self.home / "data"
        self.address = ADDRESSES[site]
        owner = pwd.getpwnam("postgres")
        self.home.mkdir(parents=True)
        for path in (self.home.parent, self.home):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        self.home.chmod(0o700)

    def _as_postgres(self, *argv: str, timeout: float = START_TIMEOUT_SECONDS) -> None:
        run(in_namespace(self.site, ["runuser", "-u", "postgres", "--", *argv]), timeout=timeout)

    def _private_file(self, name: str, text: str) -> Path:
        path = self.home / name
        path.write_text(text)
        path.chmod(0o600)
        shutil.chown(path, "postgres", "postgres")
        return path

    def init_primary(self) -> None:
        """initdb (checksums on, scram passwords) and start, accepting replication from the other site."""
        password_file = self._private_file("pw", self.password + "\n")
        self._as_postgres(str(self.bindir / "initdb"), "-D", str(self.data), "-U", ROLE, "-E", "UTF8",
                          "--data-checksums", "--auth=scram-sha-256", f"--pwfile={password_file}", "--no-sync",
                          f"--wal-segsize={WAL_SEGMENT_MB}")
        password_file.unlink()
        subnet = f"{ADDRESSES['net'].rsplit('.', 1)[0]}.0/{SUBNET_BITS}"
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all {ROLE} {subnet} scram-sha-256\nhost replication {ROLE} {subnet} scram-sha-256\n")
        self.start()

    def clone_from(self, primary: Cluster) -> None:
        """pg_basebackup -R from the primary over the link: a streaming replica, then start it."""
        passfile = self._private_file("pgpass", f"{primary.address}:{PORT}:*:{ROLE}:{self.password}\n")
        run(in_namespace(self.site, ["runuser", "-u", "postgres", "--", "env", f"PGPASSFILE={passfile}",
                                     str(self.bindir / "pg_basebackup"), "-h", primary.address, "-p", str(PORT),
                                     "-U", ROLE, "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
                                     "--no-sync"]), timeout=START_TIMEOUT_SECONDS)
        # The replica's primary_conninfo names the passfile, which stays for as long as it streams.
        with (self.data / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"primary_conninfo = 'host={primary.address} port={PORT} user={ROLE} passfile={passfile} "
                       f"application_name=eu'\n")
        self.start()

    def reclone_from(self, primary: Cluster) -> None:
        """A replica that can no longer follow its primary (the primary went back in time: a point-in-time
        restore) starts again: stopped, its data removed, cloned afresh."""
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.data)
        self.clone_from(primary)

    def base_backup(self, folder: Path) -> None:
        """pg_basebackup of this server, as one compressed tar with the WAL it needs (base.tar.gz), into `folder`
        (created; owned by postgres)."""
        passfile = self._private_file("pgpass-backup", f"*:{PORT}:*:{ROLE}:{self.password}\n")
        self._as_postgres("env", f"PGPASSFILE={passfile}", str(self.bindir / "pg_basebackup"), "-h", str(self.home),
                          "-p", str(PORT), "-U", ROLE, "-D", str(folder), "-Ft", "-z", "-X", "fetch", "-c", "fast",
                          "--no-sync")

    def start(self) -> None:
        """Start the server on the site's address and a socket in the private folder; wait until it accepts."""
        options = (f"-c listen_addresses={self.address} -p {PORT} -k {self.home} -c wal_level=replica "
                   "-c max_wal_senders=5 -c hot_standby=on -c wal_keep_size=256MB -c shared_buffers=128MB "
                   "-c checkpoint_timeout=30min -c max_wal_size=4GB -c wal_retrieve_retry_interval=500ms")
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                          str(self.home / "server.log"), "-w", "-t", str(START_TIMEOUT_SECONDS), "start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop (`immediate` is a crash: no shutdown checkpoint)."""
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def promote(self) -> None:
        """Promote a replica to a primary that accepts writes (pg_ctl promote waits for it)."""
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w", "promote")

    def conninfo(self, dbname: str, over_network: bool = False) -> str:
        """libpq connection string (holds the password: never print it)."""
        host = self.address if over_network else str(self.home)
        return make_conninfo(host=host, port=PORT, user=ROLE, password=self.password, dbname=dbname,
                             connect_timeout=5)

    def url(self, dbname: str) -> str:
        """postgresql:// URL over the site's address, for the backup job and the app stand-in (secret)."""
        return f"postgresql://{ROLE}:{self.password}@{self.address}:{PORT}/{dbname}"

    def connect(self, dbname: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
        """A connection through the Unix socket."""
        return psycopg.connect(self.conninfo(dbname), autocommit=autocommit)


def new_password() -> str:
    """A fresh password for the drill's database role."""
    return secret(secrets.token_urlsafe(24))
