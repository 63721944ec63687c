"""The job's streaming transfers: the upload resumes after a broken connection, a restore into a kept database
is one transaction that a wrong checksum rolls back, and the spooled `--jobs N` path restores the same rows."""

from __future__ import annotations

import base64
import http.server
import json
import uuid
from typing import ClassVar

import google_crc32c
import psycopg
import pytest
import requests

from backup_job import storage as layout
from backup_job import transfer
from backup_job.database import Database
from backup_job.errors import ExitCode, JobError
from backup_job.restore import run_restore
from tests.services import postgres_bindir, serving

needs_postgres = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


class _ResumableSession(http.server.BaseHTTPRequestHandler):
    """One resumable-upload session as Cloud Storage runs it: `bytes */*` asks for the persisted range (308),
    `bytes N-*/*` appends a streamed body from N and completes the object. The first body is cut off after
    `cut_after` bytes, as a dropped connection would, of which only the first `persisted` are kept (all if 0)."""

    protocol_version = "HTTP/1.1"
    stored = bytearray()
    cut_after: ClassVar[int] = 0
    persisted: ClassVar[int] = 0
    requests_seen: ClassVar[list[str]] = []

    def _chunks(self):
        while True:
            size = int(self.rfile.readline().strip(), 16)
            if size == 0:
                self.rfile.readline()
                return
            yield self.rfile.read(size)
            self.rfile.readline()

    def _answer(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        cls = type(self)
        span = self.headers["Content-Range"]
        cls.requests_seen.append(span)
        if span == "bytes */*":
            self._answer(308, {"Range": f"bytes=0-{len(cls.stored) - 1}"} if cls.stored else {})
            return
        start = int(span.split()[1].split("-")[0])
        assert start == len(cls.stored), f"resumed at {start}, the session holds {len(cls.stored)}"
        received = start
        for chunk in self._chunks():
            received += len(chunk)
            if cls.cut_after and received > cls.cut_after:
                cls.stored += chunk[: cls.cut_after - len(cls.stored)]
                del cls.stored[cls.persisted or len(cls.stored):]
                cls.cut_after = 0
                self.close_connection = True
                self.connection.shutdown(2)  # the connection drops mid-body
                return
            cls.stored += chunk
        crc = base64.b64encode(google_crc32c.Checksum(bytes(cls.stored)).digest()).decode()
        self._answer(200, {"Content-Type": "application/json"},
                     json.dumps({"name": "o", "size": str(len(cls.stored)), "crc32c": crc}).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def session_server():
    _ResumableSession.stored, _ResumableSession.requests_seen = bytearray(), []
    _ResumableSession.cut_after = _ResumableSession.persisted = 0
    with serving(_ResumableSession) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/upload?upload_id=1"
    server.server_close()


def _blocks(data: bytes, size: int = 1 << 20):
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_a_dropped_connection_resumes_from_the_persisted_offset(session_server, monkeypatch):
    monkeypatch.setattr(layout, "STORAGE_RETRY_SECONDS", 10.0)
    data = bytes(range(256)) * (24 << 12)  # 24 MiB
    _ResumableSession.cut_after = 5_000_000
    upload = transfer._Upload(requests.Session(), session_server, _blocks(data), 16 << 20, "o")
    resource = upload.run()
    assert bytes(_ResumableSession.stored) == data and int(resource["size"]) == len(data)
    assert _ResumableSession.requests_seen == ["bytes 0-*/*", "bytes */*", "bytes 5000000-*/*"]
    assert upload.kept_bytes <= (16 << 20) + (1 << 20), "the resume window bounds what is kept"


def test_a_gap_beyond_the_window_fails_instead_of_storing_a_hole(session_server, monkeypatch):
    monkeypatch.setattr(layout, "STORAGE_RETRY_SECONDS", 10.0)
    _ResumableSession.cut_after, _ResumableSession.persisted = 12_000_000, 1_000_000
    upload = transfer._Upload(requests.Session(), session_server, _blocks(bytes(24 << 20)), 2 << 20, "o")
    with pytest.raises(JobError) as caught:
        upload.run()
    assert caught.value.code == ExitCode.UPLOAD_FAILED and "resume window" in str(caught.value)


def _public_tables(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        return [r[0] for r in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


@needs_postgres
def test_a_restore_whose_checksum_fails_at_the_end_leaves_the_target_untouched(bucket, source_url, postgres):
    """The dump is a valid archive, only the manifest's sha256 disagrees: pg_restore would restore it all, but the
    last chunk is held back until the checksum is known, and the single transaction is rolled back."""
    from backup_job import dump

    manifest = dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))
    lying = {**manifest, "sha256": "0" * 64}
    bucket.blob(layout.manifest_object_name(manifest["object"])).upload_from_string(json.dumps(lying))
    target = postgres.create_database(f"kept_{uuid.uuid4().hex[:8]}")
    with pytest.raises(JobError) as caught:
        run_restore(Database(target), bucket.name, object_name=manifest["object"])
    assert caught.value.code == ExitCode.VERIFICATION_MISMATCH and "nothing was restored" in str(caught.value)
    assert _public_tables(target) == []


@needs_postgres
@pytest.mark.parametrize("jobs", [1, 2])
def test_streamed_and_spooled_restores_bring_back_the_same_rows(bucket, source_url, postgres, jobs):
    from backup_job import dump

    manifest = dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))
    target = postgres.create_database(f"kept_{uuid.uuid4().hex[:8]}")
    report = run_restore(Database(target), bucket.name, object_name=manifest["object"], jobs=jobs)
    assert report["rowCounts"] == manifest["tableRowCounts"]
