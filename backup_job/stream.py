"""Streaming a dump out of the bucket: one generation of the object, hashed as it passes, fed to pg_restore.

Every read of a restore names the object's generation, found once when the
backup is picked, so the table of contents read first and the bytes whose
sha256 is checked last are the same object even if the name were written
again in between. The download overlaps the restore: a feeder thread writes
into pg_restore's stdin while the next chunk is fetched, with FEED_BLOCKS
chunks between them at most.
"""

from __future__ import annotations

import functools
import hashlib
import queue
import subprocess
import threading

from google.api_core import exceptions as gcs_errors
from google.cloud import storage

from backup_job import codec, database
from backup_job import storage as layout
from backup_job.dump import enlarge_pipe, pg_binary
from backup_job.errors import ExitCode, JobError

DOWNLOAD_CHUNK_BYTES = 8 << 20
HEAD_CHUNK_BYTES = 1 << 20
FEED_BLOCKS = 2  # downloaded chunks waiting for pg_restore at most: memory is about (FEED_BLOCKS + 2) chunks


class Aborted(Exception):
    """The restore gave up: the download stops at its next chunk."""


class HashingPipe:
    """A write-only file that hashes everything and hands it to `forward` (pg_restore's feeder, or a spool file);
    once `abort` is set, the next write raises Aborted."""

    def __init__(self, forward):
        self.forward = forward
        self.abort = threading.Event()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        if self.abort.is_set():
            raise Aborted()
        self.sha256.update(data)
        self.size += len(data)
        if data:
            self.forward.write(data)
        return len(data)

    def flush(self) -> None:
        """Nothing buffered here."""

    def matches(self, manifest: dict) -> bool:
        """Whether what passed through is the dump the manifest describes."""
        return self.sha256.hexdigest() == manifest["sha256"] and self.size == int(manifest["sizeBytes"])


_END = object()


class Feeder(threading.Thread):
    """Writes downloaded chunks into pg_restore's stdin from a bounded queue while the download goes on.

    With `hold_back`, the last chunk is written only once `finish(release=True)` says the dump is verified;
    `finish(release=False)` closes stdin without it, so pg_restore never sees the end of the dump.
    """

    def __init__(self, stdin, hold_back: bool):
        super().__init__(name="pg_restore-feeder", daemon=True)
        self.stdin, self.hold_back = stdin, hold_back
        self.items: queue.Queue = queue.Queue(maxsize=FEED_BLOCKS)
        self.release = threading.Event()
        self.restore_stopped = False

    def write(self, data: bytes) -> None:
        self.items.put(data)

    def _send(self, data: bytes) -> None:
        if not self.restore_stopped:
            try:
                self.stdin.write(data)
            except (BrokenPipeError, ValueError):
                self.restore_stopped = True  # pg_restore gave up; the download goes on for the checksum verdict

    def run(self) -> None:
        held = None
        while (item := self.items.get()) is not _END:
            if held is not None:
                self._send(held)
            held = item
            if not self.hold_back:
                self._send(held)
                held = None
        if held is not None and self.release.is_set():
            self._send(held)
        try:
            self.stdin.close()
        except (BrokenPipeError, ValueError):
            pass

    def finish(self, release: bool) -> None:
        """No more chunks: write the held-back one if `release`, then close pg_restore's stdin."""
        if release:
            self.release.set()
        self.items.put(_END)
        self.join()


def pick(gcs: storage.Client | None, bucket_name: str, prefix: str, object_name: str | None,
         kind: str | None) -> tuple[layout.Backup, storage.Blob]:
    """The backup to restore - `object_name`, or the newest valid one of `kind` - and its dump object at the
    generation every later read uses, once the dump's size is checked against the manifest."""
    bucket = (gcs or layout.client()).bucket(bucket_name)
    backup = (
        layout.Backup(object_name, layout.read_manifest(bucket, object_name))
        if object_name
        else layout.newest(bucket, prefix, kind)
    )
    blob = layout.bounded(f"reading {backup.object}", lambda: bucket.get_blob(
        backup.object, retry=layout.RETRY, timeout=layout.STORAGE_TIMEOUT_SECONDS))
    if blob is None:
        raise JobError(ExitCode.NOT_FOUND, f"{backup.object} does not exist: its manifest names a missing dump")
    if blob.size != backup.size_bytes:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{backup.object} is {blob.size} bytes; its manifest says "
                                                       f"{backup.size_bytes}")
    if missing := layout.missing_table_object(bucket, backup):
        raise JobError(ExitCode.NOT_FOUND, f"{backup.object} is not whole: {missing}; nothing was restored")
    # The blob as read carries its generation and size: every download of it asks for that generation.
    blob.chunk_size = DOWNLOAD_CHUNK_BYTES
    return backup, blob


def download(blob: storage.Blob, sink: HashingPipe) -> None:
    """Stream the dump into `sink` (which hashes it); a missing dump is NOT_FOUND, storage trouble exit 4."""
    try:
        blob.download_to_file(sink, checksum="crc32c", retry=layout.RETRY, timeout=layout.STORAGE_TIMEOUT_SECONDS)
    except gcs_errors.NotFound:
        raise JobError(ExitCode.NOT_FOUND, f"{blob.name} does not exist: its manifest names a missing dump") from None
    except layout.STORAGE_ERRORS as exc:
        raise layout.storage_error(f"downloading {blob.name}", exc) from None


class Restoring:
    """pg_restore reading one dump from the bucket on its stdin while a thread downloads and hashes it.

    With `hold_back`, the dump's last chunk reaches pg_restore only once the whole dump's sha256 and size match
    the manifest: pg_restore cannot reach its COMMIT before it has read the last byte. Whenever they do not match
    (or the download fails), pg_restore is killed before it sees the end of the dump. `wait()` returns its exit
    code once both are done; `verified` and `failure` then say how the download ended.
    """

    def __init__(self, command: list[str], blob: storage.Blob, manifest: dict, hold_back: bool,
                 env: dict[str, str] | None = None, stdout: int = subprocess.DEVNULL):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.PIPE,
                                        env=env)
        assert self.process.stdin is not None and self.process.stderr is not None  # both opened with PIPE
        enlarge_pipe(self.process.stdin)
        stderr = self.process.stderr
        self._errors: list[bytes] = []
        self._stderr_reader = threading.Thread(target=lambda: self._errors.append(stderr.read()), daemon=True)
        self._stderr_reader.start()
        self.feeder = Feeder(self.process.stdin, hold_back)
        self.feeder.start()
        self.decoder = codec.decoding(codec.of(manifest), self.feeder, manifest.get("archiveSizeBytes"))
        self.pipe = HashingPipe(self.decoder)
        self.manifest = manifest
        self.verified = False
        self.failure: BaseException | None = None
        self._downloader = threading.Thread(target=self._fetch, args=(blob,), name="dump-download", daemon=True)
        self._downloader.start()

    def _fetch(self, blob: storage.Blob) -> None:
        try:
            download(blob, self.pipe)
            self.verified = self.pipe.matches(self.manifest)
            if self.verified and (why := codec.unfinished(self.decoder)):
                self.verified = False  # the job's own bytes, yet no archive comes out of them
                raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{blob.name} is {why}; nothing was restored")
        except BaseException as exc:  # noqa: BLE001 - reported by wait()'s caller
            self.failure = exc
        finally:
            if not self.verified:
                self.kill()  # pg_restore stops short of the end of the dump (and of its COMMIT)
            self.feeder.finish(release=self.verified)

    def kill(self) -> None:
        """Stop pg_restore; the download goes on to its verdict."""
        if self.process.poll() is None:
            self.process.kill()

    def stop(self) -> None:
        """Stop pg_restore and the download (a SIGTERM: no verdict is needed)."""
        self.pipe.abort.set()
        self.kill()

    @property
    def aborted(self) -> bool:
        return self.pipe.abort.is_set()

    def wait(self) -> int:
        """Wait for the download and pg_restore; pg_restore's exit code."""
        try:
            self._downloader.join()
        except BaseException:
            self.stop()
            raise
        code = self.process.wait()
        self._stderr_reader.join(timeout=5)
        return code

    @property
    def errors(self) -> str:
        """What pg_restore printed on stderr."""
        return b"".join(self._errors).decode(errors="replace").strip()


class _Listing:
    """pg_restore's stdin, keeping a copy of the archive's bytes written into it."""

    def __init__(self, stdin):
        self.stdin, self.fed = stdin, []

    def write(self, data: bytes) -> None:
        self.fed.append(data)
        self.stdin.write(data)
        self.stdin.flush()


def read_head(blob: storage.Blob, compression: str) -> tuple[bytes, str]:
    """The archive's first bytes (decompressed), as many as `pg_restore --list --verbose` reads (its table of
    contents), and that listing. A custom-format archive written to a pipe holds its table of contents before
    any data."""
    process = subprocess.Popen([pg_binary("pg_restore"), "--list", "--verbose"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    enlarge_pipe(process.stdin)
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    listing = _Listing(process.stdin)
    decoder = codec.decoding(compression, listing)
    offset = 0
    try:
        while offset < (blob.size or 0) and process.poll() is None and not codec.broken(decoder):
            end = min(offset + HEAD_CHUNK_BYTES, blob.size or 0) - 1
            chunk = layout.bounded(f"reading {blob.name}", functools.partial(
                blob.download_as_bytes, start=offset, end=end, retry=layout.RETRY,
                timeout=layout.STORAGE_TIMEOUT_SECONDS))
            offset += len(chunk)
            try:
                decoder.write(chunk)
            except BrokenPipeError:
                break
    finally:
        try:
            process.stdin.close()
        except BrokenPipeError:
            pass
        code = process.wait()
        reader.join(timeout=10)
    if code != 0:
        detail = process.stderr.read().decode(errors="replace").strip()[-500:]
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{blob.name} is not a readable pg_dump archive: {detail}")
    return b"".join(listing.fed), b"".join(output).decode(errors="replace")


def restore_into(target: database.Database, blob: storage.Blob, backup: layout.Backup, options: list[str],
                    hold_back: bool, env: dict[str, str] | None = None) -> HashingPipe:
    """Download the dump into `pg_restore OPTIONS` (reading stdin) into `target`; verify checksum and size.

    Raises VERIFICATION_MISMATCH when the bytes are not the manifest's (then, with `hold_back`, pg_restore never
    got the last chunk and is stopped before its COMMIT), DUMP_FAILED when pg_restore fails.
    """
    manifest = backup.manifest
    # pg_restore needs -d; the name is the database's (nothing secret), the rest comes as PG* variables.
    command = [pg_binary("pg_restore"), "--exit-on-error", "--no-password", f"--dbname={target.params['dbname']}",
               *options]
    run = Restoring(command, blob, manifest, hold_back, env={**target.child_env(), **(env or {})})
    code = run.wait()
    if run.failure is not None:
        raise run.failure
    if not run.verified:
        raise JobError(
            ExitCode.VERIFICATION_MISMATCH,
            f"{backup.object}: sha256 {run.pipe.sha256.hexdigest()} ({run.pipe.size} bytes) differs from the "
            f"manifest's {manifest['sha256']} ({manifest['sizeBytes']} bytes)"
            + ("; nothing was restored" if hold_back else ""),
        )
    if code != 0:
        detail = target.scrub(run.errors)
        raise JobError(ExitCode.DUMP_FAILED, f"pg_restore {database.exit_status(code)}: {detail[-2000:]}")
    return run.pipe

