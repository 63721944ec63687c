"""A database or Cloud Storage that is down, fails mid-way, loses an answer or trickles one: every run ends
with its documented exit code and one line, within the storage timeout, and leaves nothing that passes for a
new backup - or, when only an answer was lost, reports the backup it did make.

Every server a test starts (a proxy in front of the emulator, a trickling server) listens on 127.0.0.1 and is
stopped by the test.
"""

from __future__ import annotations

import http.server
import threading
import urllib.parse

import psycopg
import pytest

from backup_job import dump
from backup_job import storage as layout
from backup_job.database import Database
from backup_job.errors import ExitCode, JobError
from tests.backup_job.emulator_proxy import Answer, proxy
from tests.backup_job.jobs import (
    FAST_STORAGE,
    assert_nothing_lost_and_no_new_backup,
    bindir,
    closed_port,
    job,
    one_log_line,
    snapshot,
)
from tests.services import postgres_bindir, serving

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")


def test_backup_database_down(bucket, seeded):
    before = snapshot(bucket)
    code, out, _err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"DATABASE_URL": f"postgresql://u:pw@127.0.0.1:{closed_port()}/db"})
    assert code == ExitCode.DATABASE_UNREACHABLE and one_log_line(out)["failure"] == "database_unreachable"
    assert_nothing_lost_and_no_new_backup(bucket, before)


def test_unreachable_database_fails_with_its_exit_code_and_leaves_nothing(bucket, scratch_url):
    dead = f"postgresql://nobody:pw@127.0.0.1:{closed_port()}/app?connect_timeout=3"
    code, out, _err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, env={"DATABASE_URL": dead})
    assert code == ExitCode.DATABASE_UNREACHABLE
    log = one_log_line(out)
    assert (log["result"], log["failure"]) == ("failure", "database_unreachable")
    assert list(bucket.list_blobs()) == [], "a failed run must leave no object"
    code, out, _err, _ = job("list", "--bucket", bucket.name, "--all")
    assert code == 0 and "no complete backups" in out
    code, _out, _err, _ = job("restore-check", "--bucket", bucket.name, env={"SCRATCH_DATABASE_URL": scratch_url})
    assert code == ExitCode.NOT_FOUND


def test_failing_pg_dump_leaves_no_object(bucket, source_url, monkeypatch):
    # pg_dump fails after connecting when it cannot import the snapshot it is given.
    monkeypatch.setattr(dump, "pg_binary", lambda name: str(bindir() / "pg_dump"))
    request = dump.BackupRequest(kind="full", bucket=bucket.name, compress_level=6)
    original = dump.subprocess.Popen

    def broken_snapshot(command, **kwargs):
        return original([c if not c.startswith("--snapshot=") else "--snapshot=00000000-0000000F-1" for c in command],
                        **kwargs)

    monkeypatch.setattr(dump.subprocess, "Popen", broken_snapshot)
    with pytest.raises(JobError) as caught:
        dump.run_backup(Database(source_url), request)
    assert caught.value.code == ExitCode.DUMP_FAILED and str(caught.value).startswith("pg_dump exited 1: ")
    assert list(bucket.list_blobs()) == []


def test_a_row_count_failure_has_its_own_exit_code(bucket, source_url, monkeypatch):
    from backup_job import database

    def broken(connection):
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    monkeypatch.setattr(database, "table_rows", broken)
    with pytest.raises(JobError) as caught:
        dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))
    assert caught.value.code == ExitCode.ROW_COUNT_FAILED and "counting rows" in str(caught.value)
    assert layout.scan(bucket, "").complete == []


@pytest.mark.parametrize("command", ["backup", "restore-check", "list", "export-dns"])
def test_storage_down_ends_in_one_line_within_the_bound(command, source_url, scratch_url):
    env = {**FAST_STORAGE, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{closed_port()}",
           "DATABASE_URL": source_url, "SCRATCH_DATABASE_URL": scratch_url, "CLOUDFLARE_API_TOKEN": "t",
           "CLOUDFLARE_API_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    extra = {"backup": ("--kind", "full"), "export-dns": ("--zone-id", "z"), "restore-check": (), "list": ()}
    code, out, err, took = job(command, *extra[command], "--bucket", "backups", "--prefix", "supabase", env=env)
    if command == "export-dns":  # the API is down too: the export fails before storage is touched
        assert code == ExitCode.EXPORT_FAILED and one_log_line(out)["failure"] == "export_failed"
        return
    assert code == ExitCode.UPLOAD_FAILED, out + err
    message = err.strip() if command == "list" else one_log_line(out)["message"]
    assert "Cloud Storage unreachable within 2 s" in message and "Traceback" not in err
    assert took < 60, f"{command} waited {took:.0f} s"


@pytest.mark.parametrize("reading", ["allowed", "forbidden"])
def test_a_lost_answer_to_the_manifest_upload_still_reports_the_backup(bucket, source_url, emulator, reading):
    """The manifest reaches the bucket, its answer does not: the retry meets 412 (the manifest exists). The
    manifest read back is the same bytes - or, for the scheduled writer, which may not read, the 412 names this
    run's own manifest - so the complete backup is reported as one."""
    manifest_uploads = []

    def losing(method: str, path: str, answer: Answer) -> Answer | None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        if method == "POST" and query.get("uploadType") == ["multipart"]:
            manifest_uploads.append(answer[0])
            if len(manifest_uploads) == 1:
                return None
        if reading == "forbidden" and method == "GET" and "manifest.json" in urllib.parse.unquote(path):
            return 403, {"Content-Type": "application/json"}, b'{"error": {"code": 403, "message": "Forbidden"}}'
        return answer

    with proxy(emulator.url, losing) as address:
        code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name,
                                env={"DATABASE_URL": source_url, "STORAGE_EMULATOR_HOST": address})
    log = one_log_line(out)
    assert code == 0 and log["result"] == "success", out + err
    assert manifest_uploads == [200, 412], "the first answer was lost, and the retry found the manifest"
    (backup,) = layout.scan(bucket, "").complete
    assert backup.object == log["object"] and backup.manifest["sha256"] == log["sha256"]


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Answers every request 200 with a JSON body sent one byte a second."""

    protocol_version = "HTTP/1.1"
    stop = threading.Event()

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"kind": "storage#objects"}' + b" " * 10
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for byte in body:
            if self.stop.wait(1.0):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("command", ["list", "restore-check", "backup"])
def test_a_trickled_answer_is_cut_off_at_the_storage_timeout(command, source_url, scratch_url):
    _Trickle.stop.clear()
    extra = ("--kind", "full") if command == "backup" else ()
    with serving(_Trickle) as server:
        try:
            code, out, err, took = job(command, *extra, "--bucket", "backups", timeout=90, env={
                "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{server.server_address[1]}",
                "BACKUP_STORAGE_TIMEOUT_SECONDS": "2", **FAST_STORAGE,
                "DATABASE_URL": source_url, "SCRATCH_DATABASE_URL": scratch_url})
        finally:
            _Trickle.stop.set()
    message = err.strip().splitlines()[-1] if command == "list" else one_log_line(out)["message"]
    assert code == ExitCode.UPLOAD_FAILED, out + err
    assert "Cloud Storage sent no complete answer within 2 s" in message and "Traceback" not in err
    assert took < 12, f"{command} took {took:.1f} s against a 2 s bound"
