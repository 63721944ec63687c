"""Fault injection for the backup job, against a real PostgreSQL and the GCS emulator.

For every subcommand, what an outage or a killed process does: each case asserts the documented exit code,
exactly one JSON log line (one stderr line for `list`), no object that `list` or `restore-check` would take for
a new good backup, and nothing that existed before deleted or replaced.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import time
from typing import ClassVar

import psycopg
import pytest

from backup_job import storage as layout
from backup_job.errors import ExitCode
from tests.backup_job.jobs import FAST_STORAGE, children_named, closed_port, job, one_log_line, start
from tests.services import serving
from tools.offline import ROOT


def snapshot(bucket) -> dict[str, int]:
    return {blob.name: blob.generation for blob in bucket.client.list_blobs(bucket)}


def assert_nothing_lost_and_no_new_backup(bucket, before: dict[str, int]) -> None:
    after = snapshot(bucket)
    for name, generation in before.items():
        assert after.get(name) == generation, f"{name} was deleted or replaced"
    found = layout.scan(bucket, "supabase")
    new_complete = [b.object for b in found.complete if b.object not in before]
    assert new_complete == [], f"a failed run left something that looks like a good backup: {new_complete}"


@pytest.fixture
def seeded(bucket, source_url) -> dict[str, int]:
    """A bucket holding one good full backup; returns its objects and generations."""
    code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"DATABASE_URL": source_url})
    assert code == 0, out + err
    return snapshot(bucket)




def _wait_for_child(pid: int, name: str, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = children_named(pid, name)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"{name} never started")


@pytest.fixture
def locked_table(source_url):
    """Hold an ACCESS EXCLUSIVE lock on a table: pg_dump then waits, so a test can kill or stop it mid-dump."""
    connection = psycopg.connect(source_url)
    connection.execute("BEGIN")
    connection.execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
    yield
    connection.rollback()
    connection.close()


# ---------------------------------------------------------------- backup


def test_backup_database_down(bucket, seeded):
    code, out, _err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"DATABASE_URL": f"postgresql://u:pw@127.0.0.1:{closed_port()}/db"})
    assert code == ExitCode.DATABASE_UNREACHABLE and one_log_line(out)["failure"] == "database_unreachable"
    assert_nothing_lost_and_no_new_backup(bucket, seeded)


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


def test_pg_dump_killed_mid_dump_leaves_no_object_and_says_how_it_ended(bucket, seeded, source_url, locked_table):
    process = start("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                    env={"DATABASE_URL": source_url})
    os.kill(_wait_for_child(process.pid, "pg_dump"), signal.SIGKILL)
    out, _err = process.communicate(timeout=60)
    assert process.returncode == ExitCode.DUMP_FAILED
    assert one_log_line(out)["message"].startswith("pg_dump was killed by SIGKILL")
    assert_nothing_lost_and_no_new_backup(bucket, seeded)


def test_sigterm_logs_the_failure_and_leaves_nothing_during_a_backup(bucket, seeded, source_url, locked_table):
    process = start("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                    env={"DATABASE_URL": source_url})
    _wait_for_child(process.pid, "pg_dump")  # waiting on the locked table
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    log = one_log_line(out)
    assert process.returncode == ExitCode.TERMINATED and log["failure"] == "terminated", out + err
    assert_nothing_lost_and_no_new_backup(bucket, seeded)


def test_sigterm_during_a_restore_check_drops_its_database(bucket, big_url, scratch_url, postgres):
    code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"DATABASE_URL": big_url})
    assert code == 0, out + err
    before = snapshot(bucket)
    process = start("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                    env={"SCRATCH_DATABASE_URL": scratch_url})
    _wait_for_child(process.pid, "pg_restore")  # restoring a dump that takes seconds
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    log = one_log_line(out)
    assert process.returncode == ExitCode.TERMINATED and log["failure"] == "terminated", out + err
    assert snapshot(bucket) == before
    with psycopg.connect(postgres.url()) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'raptorflow_restore%'")
        assert left.fetchall() == [], "a throwaway database was left behind"


@pytest.fixture(scope="module")
def big_url(postgres) -> str:
    """A database whose dump takes seconds to write and to restore (about 150 MB of text)."""
    url = postgres.create_database("faults_big")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE blobs AS SELECT i, md5(i::text) || repeat(md5(random()::text), 30) AS data "
                           "FROM generate_series(1, 150000) AS i")
    return url


def test_storage_killed_mid_transfer(big_url):
    from google.cloud import storage

    from tests.services import StorageEmulator

    big = big_url
    outer = os.environ.get("STORAGE_EMULATOR_HOST")
    emulator = StorageEmulator().start()
    try:
        storage.Client().create_bucket("faults-mid-transfer")
        process = start("backup", "--kind", "full", "--bucket", "faults-mid-transfer",
                        env={"DATABASE_URL": big, "STORAGE_EMULATOR_HOST": emulator.url, **FAST_STORAGE})
        _wait_for_child(process.pid, "pg_dump")
        time.sleep(0.5)
    finally:
        emulator.stop()
        if outer:
            os.environ["STORAGE_EMULATOR_HOST"] = outer
    out, err = process.communicate(timeout=120)
    assert process.returncode == ExitCode.UPLOAD_FAILED, out + err
    assert one_log_line(out)["failure"] == "upload_failed"


def test_a_row_count_failure_has_its_own_exit_code(bucket, source_url, monkeypatch):
    from backup_job import database, dump
    from backup_job.database import Database
    from backup_job.errors import JobError

    def broken(connection):
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    monkeypatch.setattr(database, "table_rows", broken)
    with pytest.raises(JobError) as caught:
        dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))
    assert caught.value.code == ExitCode.ROW_COUNT_FAILED and "counting rows" in str(caught.value)
    assert layout.scan(bucket, "").complete == []


@pytest.mark.parametrize("query, expected", [
    ("keepalives=1", "sets keepalives, which pg_dump and pg_restore could only get on their command line"),
    ("connect_timeout=abc", "connect_timeout must be a whole number of seconds"),
], ids=["keyword-without-env", "bad-timeout"])
def test_url_parameters_are_passed_on_or_refused(bucket, source_url, query, expected):
    code, out, _err, _ = job("backup", "--kind", "full", "--bucket", bucket.name,
                            env={"DATABASE_URL": f"{source_url}?{query}"})
    assert code == ExitCode.USAGE and expected in one_log_line(out)["message"]


def test_every_tls_keyword_reaches_the_children():
    from backup_job.database import Database

    url = ("postgresql://u:pw@db.example:5432/app?sslmode=verify-full&channel_binding=require&sslcrl=/c.pem"
           "&sslsni=1&ssl_min_protocol_version=TLSv1.3&gssencmode=disable&target_session_attrs=read-write")
    env = Database(url).child_env()
    assert {k: env[k] for k in ("PGSSLMODE", "PGCHANNELBINDING", "PGSSLCRL", "PGSSLSNI", "PGSSLMINPROTOCOLVERSION",
                                "PGGSSENCMODE", "PGTARGETSESSIONATTRS")} == {
        "PGSSLMODE": "verify-full", "PGCHANNELBINDING": "require", "PGSSLCRL": "/c.pem", "PGSSLSNI": "1",
        "PGSSLMINPROTOCOLVERSION": "TLSv1.3", "PGGSSENCMODE": "disable", "PGTARGETSESSIONATTRS": "read-write"}


def test_a_prefix_that_climbs_out_is_refused(bucket):
    code, _out, err, _ = job("list", "--bucket", bucket.name, "--prefix", "../..")
    assert code == ExitCode.USAGE and "is not an object prefix" in err


# ---------------------------------------------------------------- restore-check and list: damaged objects


def _good(bucket) -> layout.Backup:
    (backup,) = layout.scan(bucket, "supabase").complete
    return backup


@pytest.mark.parametrize("damage, failure", [
    (lambda bucket, b: bucket.blob(b.object).upload_from_string(bucket.blob(b.object).download_as_bytes()[:-100]),
     "verification_mismatch"),
    (lambda bucket, b: bucket.blob(b.object).upload_from_string(b""), "verification_mismatch"),
    (lambda bucket, b: bucket.blob(b.object).delete(), "not_found"),
    (lambda bucket, b: bucket.blob(b.object).upload_from_string(_flip_a_byte(bucket.blob(b.object).download_as_bytes())),
     "verification_mismatch"),
], ids=["truncated-dump", "empty-dump", "missing-dump", "flipped-byte"])
def test_a_damaged_dump_fails_the_check_with_its_code(bucket, seeded, scratch_url, damage, failure, postgres):
    backup = _good(bucket)
    damage(bucket, backup)
    code, out, err, _ = job("restore-check", "--bucket", bucket.name, "--object", backup.object,
                            env={"SCRATCH_DATABASE_URL": scratch_url})
    log = one_log_line(out)
    assert log["failure"] == failure and code == ExitCode[failure.upper()], out + err
    with psycopg.connect(postgres.url()) as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'raptorflow_restore%'")
        assert left.fetchall() == [], "a failed check left its database behind"


def _flip_a_byte(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    return bytes(damaged)


@pytest.mark.parametrize("manifest", [
    b'{"format": 1, "object": "trunc',
    b'{"format": 1}',
    b'[1, 2, 3]',
    None,  # names another object: filled in by the test
], ids=["truncated-json", "missing-fields", "wrong-shape", "names-another-object"])
def test_one_bad_manifest_marks_only_its_backup_invalid(bucket, seeded, source_url, scratch_url, manifest):
    older = _good(bucket)
    code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"DATABASE_URL": source_url})
    newer = one_log_line(out)["object"]
    body = manifest if manifest is not None else json.dumps({**older.manifest, "object": older.object}).encode()
    bucket.blob(layout.manifest_object_name(newer)).upload_from_string(body)

    code, out, err, _ = job("list", "--bucket", bucket.name, "--prefix", "supabase", "--json")
    assert code == 0, err
    rows = {row["object"]: row for row in json.loads(out)}
    assert rows[older.object]["complete"] and "invalid" in rows[newer] and not rows[newer]["complete"]
    code, out, err, _ = job("restore-check", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"SCRATCH_DATABASE_URL": scratch_url})
    assert code == 0 and one_log_line(out)["object"] == older.object, out + err


# ---------------------------------------------------------------- export-dns: what Cloudflare might answer

ZONE = b"$ORIGIN example.app.\n@\t1\tIN\tA\t203.0.113.10\nwww\t1\tIN\tCNAME\texample.app.\n"


class _Api(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    seen: ClassVar[list[tuple[int, str, str | None]]] = []

    def do_GET(self):
        server = self.server
        assert isinstance(server, http.server.HTTPServer)
        port = server.server_port
        type(self).seen.append((port, self.path, self.headers.get("Authorization")))
        status, headers, body = type(self).answers.get(f"{port}{self.path}", (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def two_origins():
    _Api.answers, _Api.seen = {}, []
    with serving(_Api) as first, serving(_Api) as second:
        yield [first.server_address[1], second.server_address[1]]


def _export(bucket, port):
    return job("export-dns", "--zone-id", "z1", "--bucket", bucket.name, "--prefix", "cloudflare",
               env={"CLOUDFLARE_API_TOKEN": "cf-secret-token", "CLOUDFLARE_API_BASE_URL": f"http://127.0.0.1:{port}"})


def test_a_redirect_to_another_origin_is_not_followed_with_the_token(bucket, two_origins):
    api, elsewhere = two_origins
    _Api.answers[f"{api}/zones/z1/dns_records/export"] = (
        302, {"Location": f"http://127.0.0.1:{elsewhere}/steal"}, b"")
    code, out, err, _ = _export(bucket, api)
    assert code == ExitCode.EXPORT_FAILED and "redirected to another origin" in one_log_line(out)["message"]
    assert [seen for seen in _Api.seen if seen[0] == elsewhere] == [], "the other origin was contacted"
    assert "cf-secret-token" not in out + err
    assert list(bucket.list_blobs()) == []


def test_an_html_page_is_not_stored_as_a_zone(bucket, two_origins):
    api, _ = two_origins
    _Api.answers[f"{api}/zones/z1/dns_records/export"] = (200, {}, b"<html><body>Please log in</body></html>")
    code, _out, _err, _ = _export(bucket, api)
    assert code == ExitCode.EXPORT_FAILED and list(bucket.list_blobs()) == []


# ---------------------------------------------------------------- every scheduled command, twice in a row


def test_every_scheduled_command_succeeds_twice_in_a_row(bucket, source_url, scratch_url, two_origins):
    api, _ = two_origins
    _Api.answers[f"{api}/zones/z1/dns_records/export"] = (200, {}, ZONE)
    for attempt in (1, 2):
        for args, env in (
            (("backup", "--kind", "full", "--prefix", "supabase"), {"DATABASE_URL": source_url}),
            (("backup", "--kind", "schema", "--prefix", "supabase"), {"DATABASE_URL": source_url}),
            (("restore-check", "--prefix", "supabase"), {"SCRATCH_DATABASE_URL": scratch_url}),
        ):
            code, out, err, _ = job(*args, "--bucket", bucket.name, env=env)
            assert code == 0, f"{args[0]} run {attempt}: {out}{err}"
        code, out, err, _ = _export(bucket, api)
        assert code == 0, f"export-dns run {attempt}: {out}{err}"
    assert len(layout.scan(bucket, "supabase").complete) == 4
    assert len(layout.scan(bucket, "cloudflare").complete) == 2


@pytest.mark.parametrize("url", [
    "postgresql://u:Zq9@secret@127.0.0.1:1/app",
    "postgres://app@corp:Zq9@secret@127.0.0.1:1/app?sslmode=disable",
])
def test_a_password_with_an_unencoded_at_sign_never_reaches_the_log_line(url, bucket):
    """libpq would read the password's tail as the host and print it in its error: the job refuses the URL
    first (exit 2), and no fragment of the password is in its JSON line."""

    result = subprocess.run([sys.executable, "-m", "backup_job", "backup", "--kind", "full", "--bucket", bucket.name],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DATABASE_URL": url})
    assert result.returncode == ExitCode.USAGE
    log = one_log_line(result.stdout)
    assert "%40" in log["message"]
    assert "Zq9" not in result.stdout + result.stderr and "secret" not in result.stdout + result.stderr


def test_one_hostile_manifest_never_blocks_the_others(bucket, source_url):
    """A manifest with a naive finishedAt (which cannot be ordered with the others), row counts that are a list,
    or control characters in its object name is listed as invalid, escaped; the good backup is still listed and
    picked."""
    from backup_job import dump
    from backup_job.database import Database

    good = dump.run_backup(Database(source_url), dump.BackupRequest(kind="schema", bucket=bucket.name))
    hostile: dict[str, dict] = {
        "full/2099/01/01/naive.dump": {"finishedAt": "2099-01-01T00:00:00"},
        "full/2099/01/02/list.dump": {"tableRowCounts": []},
        "full/2099/01/03/\x1b[2Jcleared\n.dump": {},
    }
    for name, override in hostile.items():
        bucket.blob(name).upload_from_string(b"PGDMP")
        manifest = {**good, "object": name, "kind": "full", "sizeBytes": 5, **override}
        bucket.blob(name + ".manifest.json").upload_from_string(json.dumps(manifest))
    result = subprocess.run([sys.executable, "-m", "backup_job", "list", "--bucket", bucket.name],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and any(line.startswith(good["object"] + " ") for line in lines), result.stdout
    assert sorted(line.split()[0] for line in lines if "INVALID" in line) == sorted(list(hostile)[:2])
    assert "\x1b" not in result.stdout and "full/2099/01/03/\\x1b[2Jcleared\\x0a.dump  full" in result.stdout
