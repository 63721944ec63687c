"""Where backups live in the bucket, and what makes one complete.

A backup is two objects: the dump `<prefix>/<folder>/YYYY/MM/DD/<UTC timestamp>.dump`
and its manifest `<dump>.manifest.json`, written last and only when the dump
was uploaded whole. A dump without a manifest is an incomplete run: `list`
and `restore-check` never pick it. Both objects are created with
`if_generation_match=0`, so nothing is ever replaced (the writer identity may
only create objects, and the bucket's retention policy forbids replacing).

A manifest that does not parse, lacks a field, has a field of the wrong shape
or names another object makes its backup *invalid*: `list` shows it as such
and goes on, `restore-check` takes the newest valid backup instead. One that
arrives damaged (not the bytes Cloud Storage's checksum describes) ends the
run with exit 5.

Backups are ordered by the bucket's creation time of their manifest, never by
the `finishedAt` the writing host's clock put in it; `list` flags a host clock
that ran ahead.

Every Cloud Storage call retries transient failures for at most
STORAGE_RETRY_SECONDS (`BACKUP_STORAGE_RETRY_SECONDS`, default 30); an
unreachable service then ends the run with exit 4 and one line, instead of the
client's two-minute default. The client's timeout bounds each socket read, so
a server trickling a byte at a time never trips it: every small call (listing,
manifest, metadata, starting an upload) also ends with exit 4 after
STORAGE_TIMEOUT_SECONDS (`BACKUP_STORAGE_TIMEOUT_SECONDS`, default 60) of
wall-clock time, retries included.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import google.auth.exceptions
import requests
from google.api_core import exceptions as gcs_errors
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption
from google.cloud.storage.retry import DEFAULT_RETRY

from backup_job.errors import ExitCode, JobError, printable
from backup_job.manifests import problem as _manifest_problem

T = TypeVar("T")


def _seconds(variable: str, default: str) -> float:
    """A positive number of seconds from the environment; USAGE naming the variable otherwise."""
    text = os.environ.get(variable, default)
    with contextlib.suppress(ValueError):
        if 0 < float(text) < float("inf"):
            return float(text)
    raise JobError(ExitCode.USAGE, f"{variable} must be a positive number of seconds, not {text[:40]!r}")


DUMP_SUFFIX = ".dump"
ZONE_SUFFIX = ".zone"
BACKUP_SUFFIXES = (DUMP_SUFFIX, ZONE_SUFFIX)  # database dumps and DNS zone exports
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1  # a zone export's, and a dump's compressed by pg_dump (backup_job.manifests)
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
STORAGE_RETRY_SECONDS = _seconds("BACKUP_STORAGE_RETRY_SECONDS", "30")
STORAGE_TIMEOUT_SECONDS = _seconds("BACKUP_STORAGE_TIMEOUT_SECONDS", "60")
# A finishedAt later than this after the bucket created its manifest is the writing host's clock running ahead.
CLOCK_SKEW_TOLERANCE_SECONDS = 60
RETRY = DEFAULT_RETRY.with_timeout(STORAGE_RETRY_SECONDS)
# What a Cloud Storage call raises when the service refuses, or cannot be reached within the retry budget.
STORAGE_ERRORS: tuple[type[BaseException], ...] = (
    gcs_errors.GoogleAPICallError, gcs_errors.RetryError, requests.exceptions.RequestException,
    google.auth.exceptions.TransportError,
)
_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]")


def check_bucket(name: str) -> str:
    """`name` if Cloud Storage's naming rules allow it (https://cloud.google.com/storage/docs/buckets#naming);
    JobError(USAGE) naming the rule it breaks otherwise."""
    problem = None
    if not 3 <= len(name) <= (222 if "." in name else 63):
        problem = "must be 3-63 characters long (up to 222 with dots)"
    elif not _BUCKET.fullmatch(name):
        problem = ("may hold only lowercase letters, digits, '-', '_' and '.', and must start and end with a "
                   "letter or digit")
    elif any(len(part) > 63 for part in name.split(".")):
        problem = "has a dot-separated part longer than 63 characters"
    elif re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        problem = "must not be an IP address"
    elif name.startswith("goog") or "google" in name:
        problem = 'must not start with "goog" or contain "google"'
    if problem:
        raise JobError(ExitCode.USAGE, f"bucket name {printable(name[:80])!r} {problem} "
                                       "(https://cloud.google.com/storage/docs/buckets#naming)")
    return name


def check_prefix(prefix: str) -> str:
    """`prefix` if it is a plain object prefix (no `..`, no empty or absolute parts); JobError(USAGE) otherwise."""
    trimmed = prefix.strip("/")
    if trimmed and (not _PREFIX.match(trimmed) or any(part in (".", "..") for part in trimmed.split("/"))):
        raise JobError(ExitCode.USAGE, f"--prefix {prefix[:100]!r} is not an object prefix: use letters, digits, "
                                       "'.', '_', '-' and '/' between parts, without '.' or '..' parts")
    return trimmed


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 with a Z, as manifests and logs write times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dump_object_name(prefix: str, folder: str, started: datetime) -> str:
    """Unique, time-ordered name of a dump started at `started` (microseconds keep same-second runs apart)."""
    stem = "/".join(part for part in (prefix.strip("/"), folder, started.strftime("%Y/%m/%d")) if part)
    return f"{stem}/{started.strftime(TIMESTAMP_FORMAT)}{DUMP_SUFFIX}"


def manifest_object_name(dump_name: str) -> str:
    """Name of the manifest that marks `dump_name` complete."""
    return dump_name + MANIFEST_SUFFIX


def client() -> storage.Client:
    """A Cloud Storage client; it honours STORAGE_EMULATOR_HOST as the library does."""
    return storage.Client()


class _Deadline(BaseException):
    """A small call outlasted STORAGE_TIMEOUT_SECONDS (a BaseException: the client's retry lets it through)."""


def bounded(action: str, call: Callable[[], T]) -> T:
    """`call()`, one small Cloud Storage call with its retries, ended after STORAGE_TIMEOUT_SECONDS of wall-clock
    time (exit 4); storage failures are storage_error(`action`), bytes damaged on the way exit 5."""
    try:
        if threading.current_thread() is not threading.main_thread():
            return call()  # SIGALRM is the main thread's: a drill's helper thread has the client's timeouts only
        with _alarm(STORAGE_TIMEOUT_SECONDS):
            return call()
    except _Deadline:
        raise JobError(ExitCode.UPLOAD_FAILED, f"{action}: Cloud Storage sent no complete answer within "
                                               f"{STORAGE_TIMEOUT_SECONDS:g} s") from None
    except DataCorruption:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{action}: the bytes received do not match the checksum "
                                                       "Cloud Storage keeps for them (damaged on the way)") from None
    except STORAGE_ERRORS as exc:
        raise storage_error(action, exc) from exc


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expired(signum: int, frame: Any) -> None:
        raise _Deadline()

    previous = signal.signal(signal.SIGALRM, expired)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            # Disarmed inside the outer block: an alarm that fires on the way out is still the caller's _Deadline.
            signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)


def storage_error(action: str, exc: BaseException) -> JobError:
    """A Cloud Storage failure as the job's upload-failed error, in one line."""
    if isinstance(exc, gcs_errors.RetryError) or isinstance(exc, (requests.exceptions.RequestException,
                                                                  google.auth.exceptions.TransportError)):
        detail = f"Cloud Storage unreachable within {STORAGE_RETRY_SECONDS:.0f} s"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return JobError(ExitCode.UPLOAD_FAILED, f"{action}: {' '.join(detail.split())[:500]}")


def write_manifest(bucket: storage.Bucket, manifest: dict[str, Any]) -> str:
    """Create the manifest of a finished dump (create-only); return its name.

    An attempt can create it and lose its answer, and the retry then meets 412: a failed upload is read back,
    and the same bytes are success. An identity that may not read (the scheduled writer) takes a 412 for its
    own lost attempt: the name is that of the dump this run has just created, create-only.
    """
    name = manifest_object_name(manifest["object"])
    body = json.dumps(manifest, indent=2, sort_keys=True).encode()
    blob = bucket.blob(name)
    try:
        bounded(f"writing manifest {name}", lambda: blob.upload_from_string(
            body, content_type="application/json", if_generation_match=0, retry=RETRY, timeout=STORAGE_TIMEOUT_SECONDS))
    except JobError as failed:
        try:
            stored = bounded(f"reading {name} back", lambda: blob.download_as_bytes(
                retry=RETRY, timeout=STORAGE_TIMEOUT_SECONDS))
        except JobError as unread:
            if not (isinstance(failed.__cause__, gcs_errors.PreconditionFailed)
                    and isinstance(unread.__cause__, gcs_errors.Forbidden)):
                raise failed from None
        else:
            if stored != body:
                raise JobError(ExitCode.UPLOAD_FAILED, f"writing manifest {name}: it exists already with other "
                                                       "content") from None
    return name


class InvalidBackup(JobError):
    """A manifest that is unusable as it is stored: its backup is invalid, and older ones are still usable."""

    def __init__(self, message: str):
        super().__init__(ExitCode.VERIFICATION_MISMATCH, message)


@dataclass(frozen=True)
class Backup:
    """A complete backup: its dump object and its manifest."""

    object: str
    manifest: dict[str, Any]
    stored_at: datetime | None = None
    """When the bucket created the manifest (its `timeCreated`): the bucket's clock, not the writing host's."""

    @property
    def finished_at(self) -> datetime:
        """When the dump finished, by the writing host's clock."""
        return datetime.fromisoformat(self.manifest["finishedAt"].replace("Z", "+00:00"))

    @property
    def clock_skew_seconds(self) -> float | None:
        """How far finishedAt lies after stored_at, if beyond CLOCK_SKEW_TOLERANCE_SECONDS; None otherwise."""
        if self.stored_at is None:
            return None
        ahead = (self.finished_at - self.stored_at).total_seconds()
        return ahead if ahead > CLOCK_SKEW_TOLERANCE_SECONDS else None

    @property
    def kind(self) -> str:
        """`full`, `schema` or `dns`."""
        return self.manifest["kind"]

    @property
    def size_bytes(self) -> int:
        """Size of the dump object."""
        return int(self.manifest["sizeBytes"])


def _created(bucket: storage.Bucket, prefix: str) -> dict[str, datetime | None]:
    """Every object under `prefix`, with the time the bucket created it."""
    def listing() -> dict[str, datetime | None]:
        blobs = bucket.client.list_blobs(bucket, prefix=prefix.strip("/") + "/" if prefix else None,
                                         retry=RETRY, timeout=STORAGE_TIMEOUT_SECONDS)
        return {blob.name: blob.time_created for blob in blobs}

    return bounded(f"listing gs://{bucket.name}/{prefix}", listing)


@dataclass(frozen=True)
class Scan:
    """What lies under a prefix: complete backups (newest first), dumps without a manifest, invalid backups."""

    complete: list[Backup]
    incomplete: list[str]
    invalid: list[tuple[str, str]]
    """(object, why) of backups whose manifest is unusable or whose dump is missing."""


def scan(bucket: storage.Bucket, prefix: str) -> Scan:
    """Every backup under `prefix`, sorted into complete, incomplete and invalid."""
    created = _created(bucket, prefix)
    names = set(created)
    dumps = sorted((n for n in names if n.endswith(BACKUP_SUFFIXES)), reverse=True)
    complete, incomplete, invalid = [], [], []
    for name in dumps:
        if manifest_object_name(name) not in names:
            incomplete.append(name)
            continue
        try:
            backup = Backup(name, read_manifest(bucket, name), created[manifest_object_name(name)])
        except InvalidBackup as exc:
            invalid.append((name, str(exc)))
            continue
        if any(table["object"] not in names for table in backup.manifest.get("tables", [])):
            incomplete.append(name)  # a parallel backup's table object is not there (not yet copied, or aged out)
            continue
        complete.append(backup)
    for manifest in sorted(n for n in names if n.endswith(MANIFEST_SUFFIX)):
        if manifest.removesuffix(MANIFEST_SUFFIX) not in names:
            invalid.append((manifest.removesuffix(MANIFEST_SUFFIX), f"{manifest} names a dump that does not exist"))
    complete.sort(key=lambda backup: (backup.stored_at or backup.finished_at, backup.object), reverse=True)
    return Scan(complete, incomplete, invalid)


def missing_table_object(bucket: storage.Bucket, backup: Backup) -> str | None:
    """Why one of a parallel backup's table objects cannot be read as its manifest lists it, or None; checked
    before a restore writes anything, since a bucket copy or an age rule may hold the manifest without them."""
    tables = backup.manifest.get("tables") or []
    if not tables:
        return None
    sizes = bounded(f"listing {backup.object}.tables/", lambda: {blob.name: blob.size for blob in bucket.client.list_blobs(
        bucket, prefix=f"{backup.object}.tables/", retry=RETRY, timeout=STORAGE_TIMEOUT_SECONDS)})
    for table in tables:
        if sizes.get(table["object"]) != table["sizeBytes"]:
            found = "does not exist" if table["object"] not in sizes else f"is {sizes[table['object']]} bytes"
            return f"{table['object']} ({table['schema']}.{table['name']}'s rows) {found}; its manifest says " \
                   f"{table['sizeBytes']} bytes"
    return None


def read_manifest(bucket: storage.Bucket, dump_name: str) -> dict[str, Any]:
    """The manifest of `dump_name`: NOT_FOUND when it has none (incomplete), InvalidBackup when unusable,
    VERIFICATION_MISMATCH when its bytes arrive damaged."""
    name = manifest_object_name(dump_name)

    def download() -> bytes:
        try:
            return bucket.blob(name).download_as_bytes(retry=RETRY, timeout=STORAGE_TIMEOUT_SECONDS)
        except gcs_errors.NotFound:
            raise JobError(ExitCode.NOT_FOUND, f"{dump_name} has no manifest: it is not a complete backup") from None

    raw = bounded(f"reading {name}", download)
    try:
        manifest = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        manifest = None
        problem: str | None = "is not valid JSON"
    else:
        problem = _manifest_problem(manifest, dump_name)
    if problem:
        raise InvalidBackup(f"invalid backup: {name} {problem}")
    return manifest


def newest(bucket: storage.Bucket, prefix: str, kind: str | None) -> Backup:
    """The newest complete, valid backup of `kind` (any kind when None)."""
    for backup in scan(bucket, prefix).complete:
        if kind is None or backup.kind == kind:
            return backup
    what = f"complete {kind} backup" if kind else "complete backup"
    raise JobError(ExitCode.NOT_FOUND, f"no {what} under gs://{bucket.name}/{prefix}")
