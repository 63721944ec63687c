"""WAL archiving for the PITR stand-in (tools/drill/pitr.py): the server's `archive_command` copies each finished WAL
file into a spool folder, and a shipper thread uploads it, gzip-compressed, into a bucket with google-cloud-storage,
as WAL-G ships Supabase's WAL to its object storage. Each segment's object carries the time of the last commit it
holds (read with pg_waldump): the newest of them is the latest point a restore can reach.

The archive_command is the documented `test ! -f ... && cp ...` form
(https://www.postgresql.org/docs/15/continuous-archiving.html#BACKUP-ARCHIVING-WAL), writing a `.part` file renamed
when complete, so the shipper never reads half a file. The server runs as `postgres`, which cannot run the project's
interpreter; the upload is the shipper's, in the process that runs the stand-in. A restore (`replay`) fetches the
base backup and the WAL back, the WAL into a folder the `restore_command` copies from, and recovers to a time.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg
from google.cloud import storage

T = TypeVar("T")
WAL_PREFIX = "wal/"
BASE_BACKUP = "basebackup/base.tar.gz"
BASE_BACKUP_MANIFEST = "basebackup/manifest.json"
HEALTHY_TIMEOUT_SECONDS = 300.0
_RECOVERY_SETTINGS = ("restore_command", "recovery_target_time", "recovery_target_action")
LAST_COMMIT_KEY = "lastCommitUnix"
"""Object metadata: the commit time (Unix seconds, fractional) of the segment's last commit record."""
SEGMENT = re.compile(r"^[0-9A-F]{24}$")
_COMMIT = re.compile(r"desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")
WALDUMP_TIMEOUT_SECONDS = 30
UPLOAD_TIMEOUT_SECONDS = 10


class Server(Protocol):
    """The PostgreSQL cluster the stand-in archives and restores (run by the OS user `postgres`)."""

    data: Path
    bindir: Path

    def start(self) -> None:
        """Start it and wait until it accepts connections."""

    def stop(self, mode: str = "fast") -> None:
        """Stop it (pg_ctl stop -m mode)."""

    def connect(self, dbname: str = "postgres", autocommit: bool = True) -> psycopg.Connection:
        """A superuser connection."""

    def base_backup(self, folder: Path) -> None:
        """pg_basebackup -Ft -z -X fetch into `folder`: base.tar.gz."""


def call_in(enter: Callable[[], None], function: Callable[[], T]) -> T:
    """`function()` in a thread that called `enter` first; its result or its error."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            enter()
            outcome["value"] = function()
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="rfdr-pitr-storage", daemon=True)
    thread.start()
    thread.join(HEALTHY_TIMEOUT_SECONDS)
    if "error" in outcome:
        raise outcome["error"]
    if "value" not in outcome:
        raise TimeoutError(f"a storage call did not finish within {HEALTHY_TIMEOUT_SECONDS:.0f} s")
    return outcome["value"]


def utc_text(unix: float) -> str:
    """Unix seconds as RFC 3339 UTC."""
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


def archive_command(spool: Path) -> str:
    """The server's archive_command: a finished WAL file copied into the spool, renamed once whole."""
    return f'test ! -f "{spool}/%f" && cp "%p" "{spool}/%f.part" && mv "{spool}/%f.part" "{spool}/%f"'


def restore_command(folder: Path) -> str:
    """The server's restore_command during a restore: a WAL file from the folder `fetch` filled (a missing one,
    such as a timeline history that never existed, fails the copy, which is how recovery learns it is absent)."""
    return f'cp "{folder}/%f" "%p"'


def last_commit(bindir: Path, segment: Path) -> float | None:
    """The commit time (Unix seconds) of the last commit record in a WAL segment, or None when it holds none."""
    result = subprocess.run([str(bindir / "pg_waldump"), "--rmgr=Transaction", str(segment)], capture_output=True,
                            text=True, timeout=WALDUMP_TIMEOUT_SECONDS, env={**os.environ, "TZ": "UTC"}, check=False)
    # pg_waldump exits 1 at the end of the valid records of a switched segment: what it printed still holds.
    found = [datetime.fromisoformat(m[1] + "+00:00").timestamp() for m in _COMMIT.finditer(result.stdout)]
    return max(found, default=None)


class Shipper(threading.Thread):
    """Uploads every file the archive_command spools, then removes it from the spool; until `stop`."""

    def __init__(self, spool: Path, bucket: Callable[[], storage.Bucket], bindir: Path, poll_seconds: float,
                 enter: Callable[[], None]) -> None:
        super().__init__(name="rfdr-wal-shipper", daemon=True)
        self.spool, self.bucket, self.bindir, self.poll_seconds, self.enter = spool, bucket, bindir, poll_seconds, enter
        self.halt = threading.Event()
        self.shipped = 0
        self.error: str | None = None
        """The last upload failure (retried at the next poll), for the stand-in's log."""

    def run(self) -> None:
        """Poll the spool; each complete file goes up once (a failed upload stays in the spool and is retried)."""
        self.enter()
        bucket = self.bucket()
        while not self.halt.wait(self.poll_seconds):
            self.ship(bucket)
        self.ship(bucket)  # what the server archived before `stop`

    def ship(self, bucket: storage.Bucket) -> None:
        """Upload what the spool holds now, oldest name first."""
        for path in sorted(p for p in self.spool.iterdir() if not p.name.endswith(".part")):
            try:
                blob = bucket.blob(WAL_PREFIX + path.name)
                if SEGMENT.match(path.name):
                    commit = last_commit(self.bindir, path)
                    blob.metadata = {} if commit is None else {LAST_COMMIT_KEY: f"{commit:.6f}"}
                # No client-side retry: a failed upload stays in the spool for the next poll, and a site whose
                # emulator is gone (a regional outage) must not hold the shipper in back-off for minutes.
                blob.upload_from_string(gzip.compress(path.read_bytes(), compresslevel=1),
                                        content_type="application/gzip", timeout=UPLOAD_TIMEOUT_SECONDS, retry=None)
            except Exception as exc:  # noqa: BLE001 - kept in the spool and retried; the stand-in reports it
                self.error = f"{path.name}: {type(exc).__name__}: {str(exc)[:200]}"
                return
            path.unlink()
            self.shipped += 1

    def stop(self) -> None:
        """Ship what is left and stop."""
        self.halt.set()
        self.join(UPLOAD_TIMEOUT_SECONDS + WALDUMP_TIMEOUT_SECONDS)


def newest_commit(bucket: storage.Bucket) -> float | None:
    """The latest commit time any archived segment holds (Unix seconds), or None."""
    times = [float((blob.metadata or {})[LAST_COMMIT_KEY]) for blob in bucket.list_blobs(prefix=WAL_PREFIX)
             if LAST_COMMIT_KEY in (blob.metadata or {})]
    return max(times, default=None)


def fetch(bucket: storage.Bucket, folder: Path) -> int:
    """Download and decompress every archived WAL file into `folder` (for the restore_command); how many."""
    count = 0
    for blob in bucket.list_blobs(prefix=WAL_PREFIX):
        target = folder / blob.name.removeprefix(WAL_PREFIX)
        target.write_bytes(gzip.decompress(blob.download_as_bytes()))
        shutil.chown(target, "postgres", "postgres")
        count += 1
    return count


def replay(server: Server, work: Path, bucket: Callable[[], storage.Bucket], enter: Callable[[], None],
           target: int) -> None:
    """Restore `server` to `target` (Unix seconds): the base backup and the archived WAL fetched into `work`, the
    data directory replaced, recovery up to the target, promoted; returns once out of recovery."""
    shutil.rmtree(work, ignore_errors=True)
    wal = work / "wal"
    wal.mkdir(parents=True)

    def download() -> None:
        found = bucket()
        found.blob(BASE_BACKUP).download_to_filename(str(work / "base.tar.gz"))
        fetch(found, wal)

    call_in(enter, download)
    for path in (work.parent, work, wal):
        shutil.chown(path, "postgres", "postgres")
    try:
        server.stop("immediate")
    except Exception:  # noqa: BLE001, S110 - already down (the damage may have stopped it)
        pass
    data = server.data
    shutil.rmtree(data)
    data.mkdir(mode=0o700)
    with tarfile.open(work / "base.tar.gz") as archive:
        archive.extractall(data, filter="data")
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.write(f"restore_command = '{restore_command(wal)}'\n"
                   f"recovery_target_time = '{datetime.fromtimestamp(target, UTC):%Y-%m-%d %H:%M:%S+00}'\n"
                   "recovery_target_action = 'promote'\n")
    (data / "recovery.signal").touch()
    for path in [data, *data.rglob("*")]:
        shutil.chown(path, "postgres", "postgres")
    server.start()
    deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
    while True:
        with server.connect() as connection:
            row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and not row[0]:
                for name in _RECOVERY_SETTINGS:  # the restore's settings go; the server runs as before
                    connection.execute(f"ALTER SYSTEM RESET {name}")
                connection.execute("SELECT pg_reload_conf()")
                break
        if time.monotonic() > deadline:
            raise TimeoutError(f"still in recovery after {HEALTHY_TIMEOUT_SECONDS:.0f} s")
        time.sleep(0.2)
    shutil.rmtree(work)
