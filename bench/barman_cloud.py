"""barman-cloud as the benchmark's physical peer: a backup of the whole cluster into the emulator, its WAL
shipped alongside, restored by starting a server on a new data directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from google.cloud import storage

from bench.harness import Bench, Outcome
from bench.measure import Run, run
from tests.services import free_port

BIN = Path(sys.executable).parent


ARMED = "ARMED"
"""The file in the spool that a barman backup in progress puts there: without it the archive_command drops each
segment, which no backup needs."""


def barman_settings(spool: Path) -> dict[str, str]:
    """Server settings for barman's WAL archive.

    barman-cloud-wal-archive would be the archive_command, but PostgreSQL runs as the `postgres` user, which cannot
    execute this machine's Python (it lives under root's home). So the archive_command copies each finished WAL
    segment into `spool`, and BarmanRelay - as root - ships every segment with barman-cloud-wal-archive: the same
    upload a real archive_command makes, a few hundred milliseconds later.

    Only while barman's backup runs (BarmanRelay.armed): the WAL the other tools make - the fill, and each restore
    writes as much WAL as the database it loads, about 7 GB at 2 GB of `app` - is no backup's and is dropped, or
    one run of every tool would spool tens of GB.
    """
    keep = f"test ! -f {spool}/%f && cp %p {spool}/%f.part && mv {spool}/%f.part {spool}/%f"
    return {"archive_mode": "on", "archive_command": f"if test -f {spool}/{ARMED}; then {keep}; fi",
            "archive_timeout": "0"}


class BarmanRelay:
    """Ships spooled WAL segments to the bucket with barman-cloud-wal-archive, in order, once each."""

    def __init__(self, spool: Path, destination: str):
        self.spool, self.destination = spool, destination
        self.shipped: set[str] = set()

    def ship(self, env: dict[str, str]) -> None:
        """Upload each segment spooled and not shipped yet, oldest first, then remove it from the spool."""
        for segment in sorted(p for p in self.spool.iterdir() if p.name not in self.shipped and p.name != ARMED
                              and p.suffix != ".part"):
            subprocess.run([str(BIN / "barman-cloud-wal-archive"), "--cloud-provider", "google-cloud-storage",
                            self.destination, "bench", str(segment)], env=env, check=True, capture_output=True)
            self.shipped.add(segment.name)
            segment.unlink()

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        """Spool the WAL while the block runs (barman's backup until its last segment is shipped), then drop what
        is left: a backup's restore needs only the WAL from its start on, and the bucket has that."""
        self._drop()
        (self.spool / ARMED).touch()
        try:
            yield
        finally:
            (self.spool / ARMED).unlink(missing_ok=True)
            self._drop()

    def _drop(self) -> None:
        for path in self.spool.iterdir():
            if path.name != ARMED:
                path.unlink(missing_ok=True)

    def remove_base(self, gcs: storage.Client, backup_id: str) -> None:
        """Delete a measured backup's base files (a copy of the whole cluster, on this machine's disk); its WAL stays."""
        bucket_name, prefix = self.destination.removeprefix("gs://").split("/", 1)
        for blob in gcs.list_blobs(bucket_name, prefix=f"{prefix}/bench/base/{backup_id}/"):
            blob.delete()

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
    with relay.armed():  # WAL from before the backup (the fill, other tools' restores) is neither its cost nor needed
        backup = run([str(BIN / "barman-cloud-backup"), "--cloud-provider", "google-cloud-storage", relay.destination,
                      "bench"], bench.watched, env=env)
        shipping = time.perf_counter()
        with psycopg.connect(bench.postgres.url(), autocommit=True) as connection:
            connection.execute("SELECT pg_switch_wal()")  # a no-op if the backup's end already switched
        deadline = time.monotonic() + 60
        while True:  # the backup is restorable once its last WAL segment is in the bucket
            relay.ship(env)
            listing = subprocess.run([str(BIN / "barman-cloud-backup-show"), "--cloud-provider",
                                      "google-cloud-storage", "--format", "json", relay.destination, "bench", "latest"],
                                     env=env, capture_output=True, text=True, check=True)
            shown = json.loads(listing.stdout)
            info = shown.get("cloud", shown)
            end_wal = info.get("end_wal") or info.get("wal_until_next_backup") or ""
            if (end_wal and end_wal in relay.shipped) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    backup = Run(backup.seconds + time.perf_counter() - shipping, backup.peak_rss_bytes, backup.cpu_seconds,
                 backup.server_cpu_seconds, backup.storage_cpu_seconds)
    backup_id = info.get("backup_id")
    stored = relay.stored_bytes(bench.bucket.client, backup_id, wal_segments(info.get("begin_wal", ""), info.get("end_wal", "")))
    restore = _restore(bench, relay, env, backup_id, info)
    relay.remove_base(bench.bucket.client, backup_id)
    return Outcome(backup=backup, restore=restore, stored_bytes=stored)


def _restore(bench: Bench, relay: BarmanRelay, env: dict[str, str], backup_id: str, info: dict) -> Run:
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
    segments = wal_segments(info.get("begin_wal", ""), info.get("end_wal", ""))
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


def wal_segments(begin: str, end: str) -> list[str]:
    """WAL segment names from `begin` to `end` inclusive (16 MB segments: 256 per log id, timeline kept)."""
    if not begin or not end:
        return []

    def number(segment: str) -> int:
        return (int(segment[8:16], 16) << 8) + int(segment[16:], 16)

    return [f"{begin[:8]}{n >> 8:08X}{n & 0xFF:08X}" for n in range(number(begin), number(end) + 1)]
