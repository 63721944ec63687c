"""`restore-check`: prove a backup restores - checksum, pg_restore into a scratch database, row counts.

The dump is streamed from the bucket into pg_restore while being hashed, so
the check needs neither the dump's size in memory nor on disk. A checksum that
differs from the manifest fails the check whatever pg_restore made of the
bytes. The scratch database must be empty: the check refuses to restore on top
of existing tables (for instance a production URL passed by mistake).
"""

from __future__ import annotations

import hashlib
import subprocess
import threading

from google.api_core import exceptions as gcs_errors
from google.cloud import storage

from backup_job import database
from backup_job import storage as layout
from backup_job.dump import pg_binary
from backup_job.errors import ExitCode, JobError

DOWNLOAD_CHUNK_BYTES = 8 << 20


class _HashingPipe:
    """A write-only file that hashes everything and forwards it to pg_restore while pg_restore reads."""

    def __init__(self, stdin):
        self.stdin = stdin
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.restore_stopped = False

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if not self.restore_stopped:
            try:
                self.stdin.write(data)
            except BrokenPipeError:
                self.restore_stopped = True  # keep hashing: the checksum verdict comes first
        return len(data)

    def flush(self) -> None:
        """Nothing buffered here."""


def run_restore_check(
    scratch: database.Database,
    bucket_name: str,
    prefix: str = "",
    object_name: str | None = None,
    kind: str | None = "full",
    gcs: storage.Client | None = None,
) -> dict:
    """Restore the newest complete backup (or `object_name`) into `scratch`; return a report. Raises JobError."""
    bucket = (gcs or layout.client()).bucket(bucket_name)
    backup = (
        layout.Backup(object_name, layout.read_manifest(bucket, object_name))
        if object_name
        else layout.newest(bucket, prefix, kind)
    )
    manifest = backup.manifest

    connection = scratch.connect()
    connection.autocommit = True
    try:
        existing = database.row_counts(connection)
        if existing:
            raise JobError(
                ExitCode.USAGE,
                f"the scratch database is not empty ({len(existing)} tables): restore-check only restores "
                "into an empty database",
            )
        dbname = scratch.params.get("dbname")
        command = [pg_binary("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--no-password"]
        command.append(f"--dbname={dbname}" if dbname else "--dbname=postgres")
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=scratch.child_env(),
        )
        stdin, stderr = process.stdin, process.stderr
        assert stdin is not None and stderr is not None  # started with stdin=PIPE and stderr=PIPE
        errors: list[bytes] = []
        stderr_reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
        stderr_reader.start()
        pipe = _HashingPipe(stdin)
        try:
            bucket.blob(backup.object, chunk_size=DOWNLOAD_CHUNK_BYTES).download_to_file(pipe, checksum="crc32c")
        except gcs_errors.GoogleAPICallError as exc:
            process.kill()
            raise layout.storage_error(f"downloading {backup.object}", exc) from None
        finally:
            try:
                stdin.close()
            except BrokenPipeError:
                pass
            code = process.wait()
            stderr_reader.join(timeout=5)

        if pipe.sha256.hexdigest() != manifest["sha256"] or pipe.size != int(manifest["sizeBytes"]):
            raise JobError(
                ExitCode.VERIFICATION_MISMATCH,
                f"{backup.object}: sha256 {pipe.sha256.hexdigest()} ({pipe.size} bytes) differs from the "
                f"manifest's {manifest['sha256']} ({manifest['sizeBytes']} bytes)",
            )
        if code != 0:
            detail = scratch.scrub(b"".join(errors).decode(errors="replace")).strip()
            raise JobError(ExitCode.DUMP_FAILED, f"pg_restore exited {code}: {detail[-2000:]}")

        expected = manifest.get("tableRowCounts")
        restored = database.row_counts(connection)
        if expected is not None:
            differences = {
                table: {"manifest": expected.get(table), "restored": restored.get(table)}
                for table in sorted(set(expected) | set(restored))
                if expected.get(table) != restored.get(table)
            }
            if differences:
                raise JobError(
                    ExitCode.VERIFICATION_MISMATCH,
                    f"{backup.object}: row counts differ from the manifest: {differences}",
                )
    finally:
        connection.close()

    return {
        "object": backup.object,
        "kind": manifest["kind"],
        "bytes": pipe.size,
        "sha256": pipe.sha256.hexdigest(),
        "tables": len(restored),
        "rows": sum(restored.values()),
    }
