"""The tools the benchmark runs side by side: the job, the peers a team would pick instead, and the floors.

Each tool backs up the same database into the same storage emulator and restores
its copy into an empty database (or, for barman, a new cluster) on the same
server. Every command runs as its own process tree, measured by bench.measure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from google.cloud import storage

from backup_job import transfer
from backup_job.database import Database
from bench.measure import Run, Watched, run, timed
from tests.services import PostgresServer, free_port
from tools.offline import ROOT

BIN = Path(sys.executable).parent

# The straightforward loop: read pg_dump's output, hash it, write 8 MiB chunks to a resumable upload, one thread.
NAIVE_BACKUP = """
import hashlib, subprocess, sys
from google.cloud import storage
blob = storage.Client().bucket(sys.argv[1]).blob(sys.argv[2], chunk_size=8 << 20)
dump = subprocess.Popen(["pg_dump", "--format=custom", "--no-password"], stdout=subprocess.PIPE)
digest = hashlib.sha256()
with blob.open("wb", if_generation_match=0) as out:
    while block := dump.stdout.read(8 << 20):
        digest.update(block)
        out.write(block)
sys.exit(dump.wait())
"""
# ... and its restore: download to a temporary file, then pg_restore it.
NAIVE_RESTORE = """
import os, subprocess, sys, tempfile
from google.cloud import storage
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "backup.dump")
    storage.Client().bucket(sys.argv[1]).blob(sys.argv[2]).download_to_filename(path)
    sys.exit(subprocess.run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "-d", sys.argv[3],
                             path]).returncode)
"""
# A streaming writer and reader with smart_open's defaults.
SMART_OPEN_WRITE = ("import shutil, sys, smart_open\n"
                    "with smart_open.open(sys.argv[1], 'wb') as out: shutil.copyfileobj(sys.stdin.buffer, out)")
SMART_OPEN_READ = ("import shutil, sys, smart_open\n"
                   "with smart_open.open(sys.argv[1], 'rb') as src: shutil.copyfileobj(src, sys.stdout.buffer)")


@dataclass
class Outcome:
    """What one tool did in one repeat at one size."""

    backup: Run | None = None
    restore: Run | None = None
    stored_bytes: int = 0
    extra: dict[str, Run] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Bench:
    """The shared set-up of one size: server, emulator, source database, bucket and a scratch folder."""

    postgres: PostgresServer
    watched: Watched
    source_db: str
    bucket: storage.Bucket
    scratch: Path
    expected_rows: dict[str, int]
    local_dump: Path | None = None  # the job's dump, kept locally for the upload and restore floors

    @property
    def url(self) -> str:
        return self.postgres.url(self.source_db)

    def env(self, dbname: str | None = None, **extra: str) -> dict[str, str]:
        """The environment of a tool: libpq variables for `dbname` (default the source), the server's binaries first."""
        libpq = {k: v for k, v in Database(self.postgres.url(dbname or self.source_db)).child_env().items()
                 if k.startswith("PG")}
        return {**os.environ, **libpq, "PATH": f"{self.postgres.bindir}:{os.environ['PATH']}", **extra}

    def empty_database(self) -> str:
        name = f"restore_{uuid.uuid4().hex[:10]}"
        self.postgres.create_database(name)
        return name

    def drop(self, name: str) -> None:
        with psycopg.connect(self.postgres.url(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def check_restored(self, url: str, tool: str) -> None:
        """The restored rows are the source's (outside the timed part: a broken peer must not look fast)."""
        from backup_job.database import row_counts

        with psycopg.connect(url) as connection:
            found = row_counts(connection)
        if found != self.expected_rows:
            raise RuntimeError(f"{tool}: restored row counts {found} differ from the source's {self.expected_rows}")

    def dump_file(self) -> Path:
        """The job's dump as a local file (the upload and restore floors use it); a `pg_dump -Fc -Z1` of the source
        when the job is not among the tools run."""
        if self.local_dump is None:
            self.local_dump = self.scratch / "job.dump"
            subprocess.run([str(self.postgres.bindir / "pg_dump"), "--format=custom", "--compress=1", "--no-password",
                            f"--file={self.local_dump}"], env=self.env(), check=True)
        return self.local_dump

    def object_name(self, tool: str) -> str:
        return f"{tool}/{uuid.uuid4().hex}.dump"

    def size_of(self, name: str) -> int:
        blob = self.bucket.get_blob(name)
        return int(blob.size) if blob is not None and blob.size is not None else 0


def _restore_into_empty(bench: Bench, tool: str, command_for) -> Run:
    target = bench.empty_database()
    try:
        measured = command_for(target)
        bench.check_restored(bench.postgres.url(target), tool)
        return measured
    finally:
        bench.drop(target)


# ---------------------------------------------------------------- floors


def floor_pg_dump(bench: Bench, compress: int | None) -> Outcome:
    """`pg_dump -Fc [-Z N] > /dev/null`."""
    command = [str(bench.postgres.bindir / "pg_dump"), "--format=custom", "--no-password"]
    if compress is not None:
        command.append(f"--compress={compress}")
    return Outcome(backup=run(command, bench.watched, env=bench.env()))


def _file_blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            yield block


def floor_upload(bench: Bench) -> Outcome:
    """The job's dump bytes alone, from a local file, in one streaming request to the same emulator (in-process)."""
    path = bench.dump_file()
    name = bench.object_name("upload-floor")
    measured = timed(lambda: transfer.upload_stream(bench.bucket, name, _file_blocks(path), "application/octet-stream"),
                     bench.watched)
    return Outcome(backup=measured, stored_bytes=path.stat().st_size)


def floor_pg_restore(bench: Bench, jobs: int) -> Outcome:
    """`pg_restore -j N` of the job's dump from a local file into an empty database."""
    dump = bench.dump_file()

    def command(target: str) -> Run:
        return run([str(bench.postgres.bindir / "pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                    "--no-password", f"--jobs={jobs}", f"--dbname={target}", str(dump)], bench.watched, env=bench.env(target))

    return Outcome(restore=_restore_into_empty(bench, f"pg_restore -j{jobs}", command))


# ---------------------------------------------------------------- the job


def _job(bench: Bench, *args: str, **env: str) -> Run:
    return run([sys.executable, "-m", "backup_job", *args, "--bucket", bench.bucket.name], bench.watched,
               env=bench.env(**env), cwd=ROOT)


def backup_job(bench: Bench) -> Outcome:
    """`backup_job backup`, then `backup_job restore` (the recovery path) into an empty database; also
    `restore-check` and `restore --jobs 2` for the record."""
    before = {blob.name for blob in bench.bucket.list_blobs(prefix="job/")}
    backup = _job(bench, "backup", "--kind", "full", "--prefix", "job", DATABASE_URL=bench.url)
    (name,) = [blob.name for blob in bench.bucket.list_blobs(prefix="job/")
               if blob.name not in before and blob.name.endswith(".dump")]
    outcome = Outcome(backup=backup, stored_bytes=bench.size_of(name))
    if bench.local_dump is None:
        bench.local_dump = bench.scratch / "job.dump"
        bench.bucket.blob(name).download_to_filename(str(bench.local_dump))

    def restore(*extra: str):
        return lambda target: _job(bench, "restore", "--object", name, *extra,
                                   TARGET_DATABASE_URL=bench.postgres.url(target))

    outcome.restore = _restore_into_empty(bench, "backup_job restore", restore())
    outcome.extra["restore --jobs 2"] = _restore_into_empty(bench, "backup_job restore --jobs 2", restore("--jobs", "2"))
    outcome.extra["restore-check"] = _job(bench, "restore-check", "--object", name,
                                          SCRATCH_DATABASE_URL=bench.postgres.url())
    return outcome


# ---------------------------------------------------------------- peers


def naive_loop(bench: Bench) -> Outcome:
    """The straightforward single-threaded loop, and a download-then-pg_restore restore."""
    name = bench.object_name("naive")
    backup = run([sys.executable, "-c", NAIVE_BACKUP, bench.bucket.name, name], bench.watched, env=bench.env())
    restore = _restore_into_empty(bench, "naive loop", lambda target: run(
        [sys.executable, "-c", NAIVE_RESTORE, bench.bucket.name, name, target], bench.watched, env=bench.env(target)))
    return Outcome(backup=backup, restore=restore, stored_bytes=bench.size_of(name))


def smart_open_stream(bench: Bench) -> Outcome:
    """`pg_dump -Fc | smart_open` (GCS writer, default settings), and `smart_open | pg_restore`."""
    name = bench.object_name("smart-open")
    url = f"gs://{bench.bucket.name}/{name}"
    writer = f"pg_dump --format=custom --no-password | {sys.executable} -c \"$WRITE\" \"$URL\""
    backup = run(["bash", "-o", "pipefail", "-c", writer], bench.watched,
                 env=bench.env(WRITE=SMART_OPEN_WRITE, URL=url))

    def restore(target: str) -> Run:
        reader = (f"{sys.executable} -c \"$READ\" \"$URL\" | pg_restore --no-owner --no-privileges --exit-on-error "
                  f"--no-password --dbname=\"$TARGET\"")
        return run(["bash", "-o", "pipefail", "-c", reader], bench.watched,
                   env=bench.env(target, READ=SMART_OPEN_READ, URL=url, TARGET=target))

    return Outcome(backup=backup, restore=_restore_into_empty(bench, "smart_open", restore),
                   stored_bytes=bench.size_of(name))


# ---------------------------------------------------------------- barman (physical backup of the whole cluster)


def barman_settings(spool: Path) -> dict[str, str]:
    """Server settings for barman's WAL archive.

    barman-cloud-wal-archive would be the archive_command, but PostgreSQL runs as the `postgres` user, which cannot
    execute this machine's Python (it lives under root's home). So the archive_command copies each finished WAL
    segment into `spool`, and BarmanRelay - as root - ships every segment with barman-cloud-wal-archive: the same
    upload a real archive_command makes, a few hundred milliseconds later.
    """
    return {"archive_mode": "on", "archive_command": f"test ! -f {spool}/%f && cp %p {spool}/%f.part && mv {spool}/%f.part {spool}/%f",
            "archive_timeout": "0"}


class BarmanRelay:
    """Ships spooled WAL segments to the bucket with barman-cloud-wal-archive, in order, once each."""

    def __init__(self, spool: Path, destination: str):
        self.spool, self.destination = spool, destination
        self.shipped: set[str] = set()

    def ship(self, env: dict[str, str]) -> None:
        for segment in sorted(p for p in self.spool.iterdir() if p.name not in self.shipped and p.suffix != ".part"):
            subprocess.run([str(BIN / "barman-cloud-wal-archive"), "--cloud-provider", "google-cloud-storage",
                            self.destination, "bench", str(segment)], env=env, check=True, capture_output=True)
            self.shipped.add(segment.name)

    def skip_archived(self) -> None:
        """Count every segment spooled so far as shipped: a backup's restore needs only the WAL from its start on."""
        self.shipped.update(p.name for p in self.spool.iterdir() if p.suffix != ".part")

    def stored_bytes(self, gcs: storage.Client, backup_id: str, segments: list[str]) -> int:
        """Bytes of one restorable copy: the backup's base files and the WAL segments its restore needs."""
        bucket_name, prefix = self.destination.removeprefix("gs://").split("/", 1)
        total = 0
        for blob in gcs.list_blobs(bucket_name, prefix=f"{prefix}/bench/"):
            if f"/base/{backup_id}/" in blob.name or any(f"/{s}" in blob.name for s in segments):
                total += int(blob.size or 0)
        return total


def barman(bench: Bench, relay: BarmanRelay) -> Outcome:
    """barman-cloud-backup of the whole cluster into the emulator (default settings: no compression), then
    barman-cloud-restore into a new data directory, the backup's WAL fetched with barman-cloud-wal-restore, and a
    server started on it until it accepts connections (recovery to the end of the backup)."""
    env = bench.env("postgres")
    relay.skip_archived()  # WAL from before the backup (the fill, other tools' restores) is neither its cost nor needed
    backup = run([str(BIN / "barman-cloud-backup"), "--cloud-provider", "google-cloud-storage", relay.destination,
                  "bench"], bench.watched, env=env)
    shipping = time.perf_counter()
    with psycopg.connect(bench.postgres.url(), autocommit=True) as connection:
        connection.execute("SELECT pg_switch_wal()")  # a no-op if the backup's end already switched
    deadline = time.monotonic() + 60
    while True:  # the backup is restorable once its last WAL segment is in the bucket
        relay.ship(env)
        listing = subprocess.run([str(BIN / "barman-cloud-backup-show"), "--cloud-provider", "google-cloud-storage",
                                  "--format", "json", relay.destination, "bench", "latest"], env=env,
                                 capture_output=True, text=True, check=True)
        import json

        shown = json.loads(listing.stdout)
        info = shown.get("cloud", shown)
        end_wal = info.get("end_wal") or info.get("wal_until_next_backup") or ""
        if (end_wal and end_wal in relay.shipped) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    backup = Run(backup.seconds + time.perf_counter() - shipping, backup.peak_rss_bytes, backup.cpu_seconds,
                 backup.server_cpu_seconds, backup.storage_cpu_seconds)
    backup_id = info.get("backup_id")
    stored = relay.stored_bytes(bench.bucket.client, backup_id, _segments(info.get("begin_wal", ""), info.get("end_wal", "")))
    restore = _barman_restore(bench, relay, env, backup_id, info)
    return Outcome(backup=backup, restore=restore, stored_bytes=stored)


def _barman_restore(bench: Bench, relay: BarmanRelay, env: dict[str, str], backup_id: str, info: dict) -> Run:
    folder = Path(tempfile.mkdtemp(prefix="barman-restore-", dir=bench.scratch))
    data, wal = folder / "data", folder / "wal"
    port = free_port()
    script = f"""
set -e
{BIN}/barman-cloud-restore --cloud-provider google-cloud-storage {relay.destination} bench {backup_id} {data}
mkdir -p {wal}
for segment in $SEGMENTS; do
  {BIN}/barman-cloud-wal-restore --cloud-provider google-cloud-storage {relay.destination} bench $segment {wal}/$segment
done
cat >> {data}/postgresql.auto.conf <<EOF
restore_command = 'cp {wal}/%f %p'
recovery_target = 'immediate'
recovery_target_action = 'promote'
archive_mode = 'off'
EOF
touch {data}/recovery.signal
chown -R postgres:postgres {folder}
chmod 700 {data}
runuser -u postgres -- {bench.postgres.bindir}/pg_ctl -D {data} -l {folder}/server.log -w -t 600 \\
  -o "-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off" start
"""
    segments = _segments(info.get("begin_wal", ""), info.get("end_wal", ""))
    os.chown(folder, 0, 0)
    try:
        measured = run(["bash", "-c", script], bench.watched, env={**env, "SEGMENTS": " ".join(segments)})
        url = bench.postgres.url(bench.source_db).replace(f":{bench.postgres.port}/", f":{port}/")
        bench.check_restored(url, "barman")
        return measured
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", str(bench.postgres.bindir / "pg_ctl"), "-D", str(data),
                        "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _segments(begin: str, end: str) -> list[str]:
    """WAL segment names from `begin` to `end` inclusive (16 MB segments: 256 per log id, timeline kept)."""
    if not begin or not end:
        return []

    def number(segment: str) -> int:
        return (int(segment[8:16], 16) << 8) + int(segment[16:], 16)

    return [f"{begin[:8]}{n >> 8:08X}{n & 0xFF:08X}" for n in range(number(begin), number(end) + 1)]
