"""`export-dns`: a daily copy of the Cloudflare zone, in BIND format, next to the database dumps.

Cloudflare's documented export endpoint (`GET /zones/{zone_id}/dns_records/export`)
returns the whole zone as a BIND file. The job stores it create-only as
`<prefix>/dns/YYYY/MM/DD/<UTC timestamp>.zone` and writes a manifest (sha256,
size, record count) last, exactly like a database backup, so `list` and the
backup-age alert treat it the same way. A non-200 answer or a zone with no
record is an error, never a backup. The API token (read-only DNS access is
enough) comes from a mounted secret file or the environment and is never logged,
and never sent anywhere but the API's own origin: a redirect to another origin
is refused rather than followed with the token. The body must be a BIND zone
(every line a comment, a directive or a resource record); an HTML error page or
anything else is refused.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from google.cloud import storage

from backup_job import storage as layout
from backup_job.errors import ExitCode, JobError
from core.contracts import EXPORT_LOG_KIND, JobEnv

API_BASE_URL = "https://api.cloudflare.com/client/v4"
TIMEOUT_SECONDS = 60
# A resource record line of a BIND zone: owner, optional TTL and class (either order), type, data.
_RECORD = re.compile(r"^\S+\s+(?:(?:\d+|IN|CH|HS)\s+){0,2}[A-Z][A-Z0-9]*\s+\S")


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the origin the token is meant for (urllib would forward it anywhere)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            raise JobError(ExitCode.EXPORT_FAILED, f"Cloudflare redirected to another origin ({new.scheme}://"
                                                   f"{new.netloc}); not followed, the token stays with the API")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


def resolve_token(token_file: str | None) -> str:
    """The API token from `--api-token-file`, CLOUDFLARE_API_TOKEN_FILE or CLOUDFLARE_API_TOKEN."""
    token_file = token_file or os.environ.get(JobEnv.CLOUDFLARE_API_TOKEN.file)
    if token_file:
        try:
            return Path(token_file).read_text().strip()
        except OSError as exc:
            raise JobError(ExitCode.USAGE, f"cannot read the Cloudflare token file: {exc.strerror}") from None
    token = os.environ.get(JobEnv.CLOUDFLARE_API_TOKEN, "").strip()
    if not token:
        raise JobError(ExitCode.USAGE, "no Cloudflare API token: pass --api-token-file or set "
                                       f"{JobEnv.CLOUDFLARE_API_TOKEN.file} or {JobEnv.CLOUDFLARE_API_TOKEN}")
    return token


def download_zone(zone_id: str, token: str, api_base_url: str | None = None) -> bytes:
    """The zone's BIND export; raises JobError on a non-200 answer, an unreachable API or an empty zone."""
    base = (api_base_url or os.environ.get("CLOUDFLARE_API_BASE_URL") or API_BASE_URL).rstrip("/")
    request = urllib.request.Request(  # noqa: S310 - an https API base URL
        f"{base}/zones/{zone_id}/dns_records/export",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/plain"},
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise JobError(ExitCode.EXPORT_FAILED, f"Cloudflare answered {exc.code} for zone {zone_id}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise JobError(ExitCode.EXPORT_FAILED, f"Cloudflare API unreachable: {type(reason).__name__}") from None
    if record_count(body) == 0:
        raise JobError(ExitCode.EXPORT_FAILED, f"zone {zone_id} exported no records: refusing to store it as a backup")
    return body


def record_count(zone: bytes) -> int:
    """Resource records in a BIND zone file; 0 when it is not one (an HTML page, a JSON error, binary)."""
    try:
        text = zone.decode("utf-8")
    except UnicodeDecodeError:
        return 0
    count = 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith((";", "$")):
            continue
        if not _RECORD.match(stripped):
            return 0
        count += 1
    return count


def run_export(zone_id: str, bucket_name: str, prefix: str, token: str,
               gcs: storage.Client | None = None) -> dict:
    """Download the zone and store it with its manifest; return the manifest."""
    started = layout.utc_now()
    clock = time.monotonic()
    zone = download_zone(zone_id, token)
    name = layout.dump_object_name(prefix, EXPORT_LOG_KIND, started).removesuffix(layout.DUMP_SUFFIX) + layout.ZONE_SUFFIX
    bucket = (gcs or layout.client()).bucket(bucket_name)
    try:
        bucket.blob(name).upload_from_string(zone, content_type="text/dns", if_generation_match=0,
                                             retry=layout.RETRY, timeout=layout.STORAGE_TIMEOUT_SECONDS)
    except layout.STORAGE_ERRORS as exc:
        raise layout.storage_error(f"uploading {name}", exc) from None
    manifest = {
        "format": layout.MANIFEST_FORMAT,
        "object": name,
        "bucket": bucket_name,
        "kind": EXPORT_LOG_KIND,
        "trigger": "scheduled",
        "zoneId": zone_id,
        "sha256": hashlib.sha256(zone).hexdigest(),
        "sizeBytes": len(zone),
        "records": record_count(zone),
        "startedAt": layout.iso(started),
        "finishedAt": layout.iso(layout.utc_now()),
        "durationSeconds": round(time.monotonic() - clock, 3),
    }
    layout.write_manifest(bucket, manifest)
    return manifest
