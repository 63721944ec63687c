"""A dump of unknown size into Cloud Storage as one streaming request, resumed from where the service stands.

The backup used to send its dump as 16 MiB resumable-upload chunks, one request
each: every chunk was assembled in memory first, then sent while nothing else
went on the wire. Here the whole dump is one resumable-upload request whose body
is the dump itself (chunked transfer encoding, `Content-Range: bytes 0-*/*`,
the single-request mode the Node.js client uses for streams): bytes leave as
soon as pg_dump writes them, and the object exists only when the request ends
with the stream - after pg_dump exited 0. (It also keeps the GCS emulator
linear: fake-gcs-server re-hashes everything received so far on every chunk.)

A broken connection does not end the upload. The last `window` bytes sent are
kept; the service is asked how much it has persisted (`Content-Range: bytes */*`,
answered with 308 and a Range), and a new request carries on from there, as
long as the gap lies within the window and the storage retry budget is not spent.
The object is then compared with what was sent (size and CRC32C); a mismatch
fails the run before any manifest is written.
"""

from __future__ import annotations

import base64
import collections
import time
from collections.abc import Iterable, Iterator
from typing import Any

import google_crc32c
import requests
from google.api_core import exceptions as gcs_errors
from google.cloud import storage

from backup_job import storage as layout
from backup_job.errors import ExitCode, JobError

DEFAULT_WINDOW_BYTES = 32 << 20  # bytes kept to resume after a broken connection; memory is this plus the queue
RESUME_INCOMPLETE = 308


class SourceFailed(Exception):
    """The byte source (pg_dump) failed: the upload must end without an object. `cause` is what it raised."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


class _Interrupted(Exception):
    """One request did not complete: resume if the window allows."""


class _Upload:
    def __init__(self, transport: Any, url: str, source: Iterable[bytes], window: int, name: str):
        self.transport, self.url, self.window, self.name = transport, url, window, name
        self.source: Iterator[bytes] = iter(source)
        self.sent = 0  # bytes handed to a request body
        self.exhausted = False
        self.kept: collections.deque[tuple[int, bytes]] = collections.deque()  # (offset, block), the last `window` bytes
        self.kept_bytes = 0
        self.crc32c = google_crc32c.Checksum()

    def _fresh(self) -> Iterator[bytes]:
        while True:
            try:
                block = next(self.source)
            except StopIteration:
                self.exhausted = True
                return
            except BaseException as exc:  # noqa: BLE001 - raised out of the request as SourceFailed, never retried
                raise SourceFailed(exc) from None
            self.crc32c.update(block)
            self.kept.append((self.sent, block))
            self.kept_bytes += len(block)
            self.sent += len(block)
            while self.kept_bytes - len(self.kept[0][1]) >= self.window:
                self.kept_bytes -= len(self.kept.popleft()[1])
            yield block

    def _body(self, start: int) -> Iterator[bytes]:
        for offset, block in list(self.kept):
            if offset + len(block) > start:
                yield block[max(0, start - offset):]
        if not self.exhausted:
            yield from self._fresh()

    def _put(self, headers: dict[str, str], body: Iterable[bytes] | bytes) -> requests.Response:
        try:
            return self.transport.put(self.url, data=body, headers=headers,
                                      timeout=(layout.STORAGE_TIMEOUT_SECONDS, layout.STORAGE_TIMEOUT_SECONDS))
        except layout.STORAGE_ERRORS as exc:
            raise _Interrupted(f"{type(exc).__name__}: {exc}") from None

    def _finished(self, response: requests.Response) -> dict | None:
        """The object resource if `response` completed the upload; None if the service wants more (308)."""
        if response.status_code in (200, 201):
            return response.json()
        if response.status_code == RESUME_INCOMPLETE:
            return None
        if response.status_code in (408, 429) or response.status_code >= 500:
            raise _Interrupted(f"HTTP {response.status_code}")
        raise gcs_errors.from_http_response(response)

    def _persisted(self) -> int | dict:
        """Bytes the service holds (from a status query), or the object if the upload already completed."""
        response = self._put({"Content-Range": "bytes */*", "Content-Length": "0"}, b"")
        finished = self._finished(response)
        if finished is not None:
            return finished
        held = response.headers.get("Range")  # "bytes=0-N"
        return int(held.rsplit("-", 1)[1]) + 1 if held else 0

    def run(self) -> dict:
        start, deadline, delay = 0, None, 0.5
        while True:
            try:
                if start == self.sent and self.exhausted:  # every byte is there: only the total is missing
                    response = self._put({"Content-Range": f"bytes */{self.sent}", "Content-Length": "0"}, b"")
                else:
                    response = self._put({"Content-Range": f"bytes {start}-*/*"}, self._body(start))
                finished = self._finished(response)
                if finished is not None:
                    return finished
                raise _Interrupted("the service answered 308 to a request that ended the stream")
            except _Interrupted as interrupted:
                deadline = deadline or time.monotonic() + layout.STORAGE_RETRY_SECONDS
                while True:
                    if time.monotonic() + delay > deadline:
                        raise JobError(ExitCode.UPLOAD_FAILED, f"uploading {self.name}: Cloud Storage unreachable "
                                                               f"within {layout.STORAGE_RETRY_SECONDS:.0f} s "
                                                               f"({interrupted})") from None
                    time.sleep(delay)
                    delay = min(delay * 2, 8.0)
                    try:
                        held = self._persisted()
                        break
                    except _Interrupted as again:
                        interrupted = again
                if isinstance(held, dict):
                    return held
                oldest = self.kept[0][0] if self.kept else self.sent
                if not oldest <= held <= self.sent:
                    raise JobError(ExitCode.UPLOAD_FAILED, f"uploading {self.name}: the service holds {held} bytes, "
                                                           f"{self.sent - held} behind what was sent and beyond the "
                                                           f"{self.window}-byte resume window") from None
                start = held


def upload_stream(bucket: storage.Bucket, name: str, source: Iterable[bytes], content_type: str,
                  window: int = DEFAULT_WINDOW_BYTES) -> dict:
    """Create `name` (create-only) from `source`'s bytes in one streaming request; return the object's resource.

    An exception raised by `source` ends the request without the final chunk, so no object is created; it is
    re-raised as SourceFailed. Storage trouble beyond the retry budget is JobError(UPLOAD_FAILED), and so is an
    object whose size or CRC32C differs from what was sent.
    """
    url = layout.bounded(f"starting the upload of {name}", lambda: bucket.blob(name).create_resumable_upload_session(
        content_type=content_type, if_generation_match=0, checksum=None, retry=layout.RETRY,
        timeout=layout.STORAGE_TIMEOUT_SECONDS))
    upload = _Upload(bucket.client._http, url, source, window, name)
    try:
        resource = upload.run()
    except layout.STORAGE_ERRORS as exc:
        raise layout.storage_error(f"uploading {name}", exc) from None
    crc32c = base64.b64encode(upload.crc32c.digest()).decode()
    if int(resource.get("size", -1)) != upload.sent or resource.get("crc32c") != crc32c:
        raise JobError(ExitCode.UPLOAD_FAILED, f"uploading {name}: the stored object ({resource.get('size')} bytes, "
                                               f"crc32c {resource.get('crc32c')}) differs from the {upload.sent} bytes "
                                               f"sent (crc32c {crc32c})")
    return resource
