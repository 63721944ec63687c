"""Where backups live in the bucket, and what makes one complete.

A backup is two objects: the dump `<prefix>/<folder>/YYYY/MM/DD/<UTC timestamp>.dump`
and its manifest `<dump>.manifest.json`, written last and only when the dump
was uploaded whole. A dump without a manifest is an incomplete run: `list`
and `restore-check` never pick it. Both objects are created with
`if_generation_match=0`, so nothing is ever replaced (the writer identity may
only create objects, and the bucket's retention policy forbids replacing).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gcs_errors
from google.cloud import storage

from backup_job.errors import ExitCode, JobError

DUMP_SUFFIX = ".dump"
ZONE_SUFFIX = ".zone"
BACKUP_SUFFIXES = (DUMP_SUFFIX, ZONE_SUFFIX)  # database dumps and DNS zone exports
MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"


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


def storage_error(action: str, exc: Exception) -> JobError:
    """A Cloud Storage failure as the job's upload-failed error."""
    return JobError(ExitCode.UPLOAD_FAILED, f"{action}: {type(exc).__name__}: {exc}")


def write_manifest(bucket: storage.Bucket, manifest: dict[str, Any]) -> str:
    """Create the manifest of a finished dump (create-only); return its name."""
    name = manifest_object_name(manifest["object"])
    try:
        bucket.blob(name).upload_from_string(
            json.dumps(manifest, indent=2, sort_keys=True),
            content_type="application/json",
            if_generation_match=0,
        )
    except gcs_errors.GoogleAPICallError as exc:
        raise storage_error(f"writing manifest {name}", exc) from None
    return name


@dataclass(frozen=True)
class Backup:
    """A complete backup: its dump object and its manifest."""

    object: str
    manifest: dict[str, Any]

    @property
    def finished_at(self) -> datetime:
        """When the dump finished."""
        return datetime.fromisoformat(self.manifest["finishedAt"].replace("Z", "+00:00"))

    @property
    def kind(self) -> str:
        """`full`, `schema` or `dns`."""
        return self.manifest["kind"]

    @property
    def size_bytes(self) -> int:
        """Size of the dump object."""
        return int(self.manifest["sizeBytes"])


def _names(bucket: storage.Bucket, prefix: str) -> Iterable[str]:
    try:
        for blob in bucket.client.list_blobs(bucket, prefix=prefix.strip("/") + "/" if prefix else None):
            yield blob.name
    except gcs_errors.GoogleAPICallError as exc:
        raise storage_error(f"listing gs://{bucket.name}/{prefix}", exc) from None


def scan(bucket: storage.Bucket, prefix: str) -> tuple[list[Backup], list[str]]:
    """Complete backups under `prefix`, newest first, and the dumps that have no manifest."""
    names = set(_names(bucket, prefix))
    dumps = sorted((n for n in names if n.endswith(BACKUP_SUFFIXES)), reverse=True)
    complete, incomplete = [], []
    for name in dumps:
        if manifest_object_name(name) in names:
            complete.append(Backup(name, read_manifest(bucket, name)))
        else:
            incomplete.append(name)
    complete.sort(key=lambda backup: backup.finished_at, reverse=True)
    return complete, incomplete


def read_manifest(bucket: storage.Bucket, dump_name: str) -> dict[str, Any]:
    """The manifest of `dump_name` (NOT_FOUND when the dump has none, i.e. is incomplete)."""
    name = manifest_object_name(dump_name)
    try:
        manifest = json.loads(bucket.blob(name).download_as_bytes())
    except gcs_errors.NotFound:
        raise JobError(ExitCode.NOT_FOUND, f"{dump_name} has no manifest: it is not a complete backup") from None
    except gcs_errors.GoogleAPICallError as exc:
        raise storage_error(f"reading {name}", exc) from None
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("object") != dump_name:
        raise JobError(ExitCode.VERIFICATION_MISMATCH, f"{name} does not describe {dump_name}")
    return manifest


def newest(bucket: storage.Bucket, prefix: str, kind: str | None) -> Backup:
    """The newest complete backup of `kind` (any kind when None)."""
    complete, _ = scan(bucket, prefix)
    for backup in complete:
        if kind is None or backup.kind == kind:
            return backup
    raise JobError(ExitCode.NOT_FOUND, f"no complete {kind or ''} backup under gs://{bucket.name}/{prefix}".replace("  ", " "))
