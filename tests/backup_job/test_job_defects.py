"""Red-team defects of the backup job, each pinned by the run that showed it, against a real PostgreSQL and the
GCS emulator: which backup is the newest, the exit code and one line of every way a run fails, and reports that
say what is true (what a stopped parallel restore left, a manifest whose answer was lost, a trickled answer).

Every server a test starts (a proxy in front of the emulator, a trickling server) listens on 127.0.0.1 and is
stopped by the test.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import http.server
import json
import shutil
import signal
import tempfile
import threading
import time
import types
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from backup_job import cli, dump, restore
from backup_job import storage as layout
from backup_job.database import Database
from backup_job.errors import COMMANDS, ExitCode
from tests.backup_job.jobs import FAST_STORAGE, children_named, closed_port, job, one_log_line, start
from tests.services import postgres_bindir, serving

pytestmark = pytest.mark.skipif(postgres_bindir() is None, reason="needs Debian's postgresql package")











def user_tables(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT schemaname || '.' || tablename FROM pg_tables "
                                  "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").fetchall()
    return sorted(row[0] for row in rows)


def public_rows(url: str) -> dict[str, int]:
    """Rows of every table in the schema public, counted."""
    with psycopg.connect(url) as connection:
        tables = [row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        counted = {}
        for table in tables:
            row = connection.execute(psycopg.sql.SQL("SELECT count(*) FROM {}").format(
                psycopg.sql.Identifier(table))).fetchone()
            assert row is not None
            counted[f"public.{table}"] = row[0]
    return counted




def wait_until(condition: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} never happened")
        time.sleep(0.01)


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler installed (its SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return bool(mask & (1 << (signal.SIGTERM - 1)))


@pytest.fixture
def seeded(bucket, source_url) -> layout.Backup:
    """A bucket holding one good full backup of the sample database under `supabase`."""
    code, out, err, _ = job("backup", "--kind", "full", "--bucket", bucket.name, "--prefix", "supabase",
                            env={"DATABASE_URL": source_url})
    assert code == 0, out + err
    (backup,) = layout.scan(bucket, "supabase").complete
    return backup


def maps_a_library(pid: int, name: str) -> bool:
    """Whether the process has loaded a shared library whose path holds `name`."""
    try:
        return name in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def new_database(postgres) -> str:
    return postgres.create_database(f"target_{uuid.uuid4().hex[:10]}")


# ---------------------------------------------------------------- servers in front of (or instead of) the emulator


Answer = tuple[int, dict[str, str], bytes]


@contextlib.contextmanager
def proxy(upstream: str, on_answer: Callable[[str, str, Answer], Answer | None]) -> Iterator[str]:
    """An HTTP proxy on 127.0.0.1 in front of the emulator at `upstream`; yields its base URL (for
    STORAGE_EMULATOR_HOST). Every request is forwarded whole; `on_answer(method, path, answer)` returns the
    answer to send back, or None to close the connection without one (an answer lost on the way). Links the
    emulator puts in its answers (upload sessions, media links) are rewritten to come back through the proxy."""
    target = urllib.parse.urlsplit(upstream)

    class Forward(http.server.BaseHTTPRequestHandler):
        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
            return b"".join(parts)

        def _forward(self) -> None:
            body = self._body()
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in ("transfer-encoding", "content-length", "host", "connection")}
            connection = http.client.HTTPConnection(target.netloc, timeout=60)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            finally:
                connection.close()
            assert isinstance(self.server, http.server.HTTPServer)
            here = f"http://127.0.0.1:{self.server.server_port}"
            answer = on_answer(self.command, self.path, (
                response.status, {k: v.replace(upstream, here) for k, v in response.getheaders()},
                data.replace(upstream.encode(), here.encode())))
            if answer is None:
                self.close_connection = True
                return
            status, answer_headers, data = answer
            self.send_response(status)
            for key, value in answer_headers.items():
                if key.lower() not in ("transfer-encoding", "content-length", "connection", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # a client stopped meanwhile
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        def log_message(self, *args) -> None:
            pass

    with serving(Forward) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def flip_middle_byte(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    return bytes(damaged)


# ---------------------------------------------------------------- which backup is the newest


def test_the_newest_backup_is_the_one_the_bucket_stored_last_whatever_the_hosts_clock(bucket, source_url,
                                                                                        monkeypatch):
    """A host whose clock runs a day ahead writes a finishedAt in the future: ordered by that, its backup would
    stay "the newest" for a day. The bucket's creation time orders backups, and `list` flags the clock."""
    ahead = timedelta(days=1)
    with monkeypatch.context() as skewed:
        skewed.setattr(layout, "utc_now", lambda: layout.datetime.now(layout.UTC) + ahead)
        early = dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))
    later = dump.run_backup(Database(source_url), dump.BackupRequest(kind="full", bucket=bucket.name))

    assert layout.newest(bucket, "", "full").object == later["object"], "the skewed host's backup won"
    code, out, err, _ = job("list", "--bucket", bucket.name, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [row["object"] for row in rows] == [later["object"], early["object"]]
    assert rows[0]["futureFinishedAt"] is False and rows[0]["clockSkewSeconds"] is None
    assert rows[1]["futureFinishedAt"] is True
    assert abs(rows[1]["clockSkewSeconds"] - ahead.total_seconds()) < layout.CLOCK_SKEW_TOLERANCE_SECONDS
    assert all(row["ageSeconds"] >= 0 for row in rows), "an age comes from the bucket's clock"
    code, out, err, _ = job("list", "--bucket", bucket.name)
    flagged = [line.split()[0] for line in out.splitlines() if "CLOCK AHEAD" in line]
    assert flagged == [early["object"]], out


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize("damage, command", [
    ("stored-dump", ("restore", "--jobs", "2")),
    ("dump-on-the-way", ("restore", "--jobs", "1")),
    ("dump-on-the-way", ("restore", "--jobs", "2")),
    ("dump-on-the-way", ("restore-check",)),
    ("manifest-on-the-way", ("restore", "--jobs", "1")),
    ("manifest-on-the-way", ("restore", "--jobs", "2")),
    ("manifest-on-the-way", ("restore-check",)),
], ids=lambda value: value if isinstance(value, str) else "-".join(value).replace("--", ""))
def test_a_damaged_download_exits_5_on_every_restoring_path(bucket, seeded, emulator, postgres, damage, command):
    """Bytes damaged in the bucket, or on the way (a proxy flips one byte of every answer carrying the dump or
    the manifest), end every restore and the check with exit 5 and one line, and nothing reaches the target."""
    if damage == "stored-dump":
        blob = bucket.blob(seeded.object)
        blob.upload_from_string(flip_middle_byte(blob.download_as_bytes()))  # the emulator lets the test replace it
    wanted = ".manifest.json" if damage == "manifest-on-the-way" else ".dump"

    def damaging(method: str, path: str, answer: Answer) -> Answer:
        status, headers, data = answer
        name = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
        if damage != "stored-dump" and "alt=media" in path and name.endswith(wanted):
            data = flip_middle_byte(data)
        return status, headers, data

    target = new_database(postgres)
    with proxy(emulator.url, damaging) as address:
        code, out, err, _ = job(*command, "--bucket", bucket.name, "--prefix", "supabase",
                                env={"STORAGE_EMULATOR_HOST": address, "TARGET_DATABASE_URL": target,
                                     "SCRATCH_DATABASE_URL": target, **FAST_STORAGE})
    log = one_log_line(out)
    assert (code, log["failure"]) == (ExitCode.VERIFICATION_MISMATCH, "verification_mismatch"), out + err
    assert "Traceback" not in err
    assert user_tables(target) == [], "a damaged dump reached the target"


@pytest.fixture
def restore_in_process(seeded, bucket, postgres, monkeypatch, capsys):
    """Run `restore --jobs 2` of the seeded backup through the CLI in this process (so a test can arrange the
    spool folder); return (exit code, its one log line, the target URL)."""
    target = new_database(postgres)
    monkeypatch.setenv("TARGET_DATABASE_URL", target)

    def run() -> tuple[int, dict, str]:
        code = cli.main(["restore", "--bucket", bucket.name, "--prefix", "supabase", "--jobs", "2"])
        return code, one_log_line(capsys.readouterr().out), target

    return run


def test_no_room_to_spool_a_parallel_restore_is_refused_before_the_download(restore_in_process, seeded,
                                                                             monkeypatch):
    downloads = []
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: types.SimpleNamespace(free=seeded.size_bytes - 1))
    monkeypatch.setattr(restore.stream, "download", lambda *args: downloads.append(args))
    code, log, target = restore_in_process()
    assert code == ExitCode.USAGE and log["failure"] == "usage", log
    assert tempfile.gettempdir() in log["message"] and f"{seeded.size_bytes:,} bytes" in log["message"], log
    assert "--jobs 1" in log["message"] and downloads == [] and user_tables(target) == []


def test_a_spool_folder_that_fills_up_ends_with_the_same_line(restore_in_process, seeded, monkeypatch):
    """The spool file is /dev/full, so the kernel's own ENOSPC ends the download."""
    real = tempfile.TemporaryDirectory

    @contextlib.contextmanager
    def full(*args, **kwargs) -> Iterator[str]:
        with real(*args, **kwargs) as folder:
            (Path(folder) / "backup.dump").symlink_to("/dev/full")
            yield folder

    monkeypatch.setattr(restore.tempfile, "TemporaryDirectory", full)
    code, log, target = restore_in_process()
    assert code == ExitCode.USAGE and log["failure"] == "usage", log
    assert tempfile.gettempdir() in log["message"] and f"{seeded.size_bytes:,} bytes" in log["message"], log
    assert "filled up" in log["message"] and user_tables(target) == []


@pytest.mark.parametrize("tables", [(), ("--table", "public.customers")], ids=["whole", "table"])
def test_a_read_only_target_is_refused_before_anything_is_downloaded(postgres, tables):
    """Storage is unreachable here: a restore that got as far as reading the bucket would exit 4."""
    target = new_database(postgres)
    name = target.rsplit("/", 1)[1]
    with psycopg.connect(postgres.url(), autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    code, out, err, _ = job("restore", "--bucket", "backups", *tables,
                            env={"TARGET_DATABASE_URL": target, **FAST_STORAGE,
                                 "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{closed_port()}"})
    log = one_log_line(out)
    assert code == ExitCode.DATABASE_UNREACHABLE, out + err
    assert f"the target database {name} is read-only" in log["message"], log
    assert "nothing was downloaded or written" in log["message"] and postgres.password not in out + err


@pytest.mark.parametrize("name, rule", [
    ("ab", "3-63 characters"),
    ("a" * 64, "3-63 characters"),
    ("a." * 111 + "ab", "3-63 characters"),  # 224 characters with dots
    ("part." + "a" * 64, "longer than 63"),
    ("Backups", "lowercase"),
    ("-backups", "start and end"),
    ("backups_", "start and end"),
    ("back/ups", "lowercase"),
    ("192.168.5.4", "IP address"),
    ("goog-backups", '"goog"'),
    ("my-google-backups", '"google"'),
])
def test_a_bucket_name_cloud_storage_refuses_is_a_usage_error(name, rule):
    with pytest.raises(layout.JobError) as caught:
        layout.check_bucket(name)
    assert caught.value.code == ExitCode.USAGE and rule in str(caught.value)
    assert "https://cloud.google.com/storage/docs/buckets#naming" in str(caught.value)


@pytest.mark.parametrize("name", ["abc", "a" * 63, "raptorflow-prod-db-dumps", "my_bucket.example.com",
                                  ".".join(["a" * 63] * 3) + ".a" * 14, "192.168.5.x", "1.2.3.4.5"])
def test_a_bucket_name_cloud_storage_allows_passes(name):
    assert layout.check_bucket(name) == name


@pytest.mark.parametrize("command", ["backup", "list"])
def test_an_invalid_bucket_name_exits_2_with_one_line(command, source_url):
    """Before any storage call: the storage here is unreachable, which would be exit 4."""
    extra = ("--kind", "full") if command == "backup" else ()
    code, out, err, _ = job(command, *extra, "--bucket", "Prod_Backups", env={
        "DATABASE_URL": source_url, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{closed_port()}", **FAST_STORAGE})
    assert code == ExitCode.USAGE, out + err
    message = err.strip().splitlines()[-1] if command == "list" else one_log_line(out)["message"]
    assert "bucket name 'Prod_Backups' may hold only lowercase letters" in message and "\n" not in message


def test_the_known_commands_are_the_parsers_subcommands():
    (commands,) = [action for action in cli.build_parser()._actions if action.dest == "command"]
    assert commands.choices is not None and set(commands.choices) == set(COMMANDS)


@pytest.mark.parametrize("args, said", [
    (("backup", "--kind", "full", "--bogus"), "unrecognized arguments: --bogus"),
    (("backup",), "the following arguments are required: --kind"),
    (("restore", "--jobs", "many"), "invalid int value: 'many'"),
    (("list", "--bogus"), "unrecognized arguments: --bogus"),
    (("backup", "--kind", "full", "--databaseurl=postgresql://app:Sekr3t-pw@db.example/app"),
     "unrecognized arguments: --databaseurl=postgresql://app:[password]@db.example/app"),
], ids=["unknown-flag", "missing-required", "bad-type", "list-unknown-flag", "secret-in-a-mistyped-flag"])
def test_an_argument_error_also_ends_with_the_json_line(args, said):
    code, out, err, _ = job(*args)
    log = one_log_line(out)
    assert code == ExitCode.USAGE and "usage: python -m backup_job" in err
    assert {k: log[k] for k in ("event", "result", "exitCode", "failure", "command")} == {
        "event": "raptorflow.backup", "result": "failure", "exitCode": 2, "failure": "usage", "command": args[0]}
    assert said in log["message"] and said in err
    assert "Sekr3t" not in out + err


# ---------------------------------------------------------------- SIGTERM


@pytest.fixture(scope="module")
def long_run(postgres, emulator) -> tuple[str, str, dict]:
    """A database whose dump takes a second or two to write and to restore, in tables of very different sizes,
    and a bucket holding one full backup of it: (database URL, bucket name, manifest)."""
    from google.cloud import storage

    url = postgres.create_database(f"long_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as connection:
        for table, rows in (("small_a", 10), ("small_b", 100), ("small_c", 1000),
                            ("big_a", 25000), ("big_b", 25000), ("big_c", 25000)):
            connection.execute(f"CREATE TABLE {table} AS SELECT i, md5(i::text) || repeat(md5(random()::text), 30) "  # noqa: S608 - the test's own names
                               f"AS data FROM generate_series(1, {rows}) AS i")
            connection.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (i)")
    bucket = storage.Client().create_bucket(f"long-{uuid.uuid4().hex[:12]}")
    manifest = dump.run_backup(Database(url), dump.BackupRequest(kind="full", bucket=bucket.name, compress_level=0))
    return url, bucket.name, manifest


@pytest.fixture
def stalled(long_run, emulator) -> Iterator[str]:
    """Runs stall in the middle until SIGTERM: pg_dump waits on a table the test locks, and a restore's download
    waits at a proxy that holds the dump back. Yields the proxy's address."""
    url, _, _ = long_run
    release = threading.Event()

    def holding(method: str, path: str, answer: Answer) -> Answer:
        if urllib.parse.unquote(urllib.parse.urlsplit(path).path).endswith(".dump"):
            release.wait(60)
        return answer

    with psycopg.connect(url) as locker, proxy(emulator.url, holding) as address:
        locker.execute("LOCK TABLE big_a IN ACCESS EXCLUSIVE MODE")
        try:
            yield address
        finally:
            release.set()


DELAYS = (0.0, 0.2, 0.5, 1.0, 1.6)  # after the handler is installed: loading the libraries, connecting, working


@pytest.mark.parametrize("command", ["backup", "restore", "list"])
def test_sigterm_at_any_moment_ends_with_one_line_and_exit_10(command, long_run, stalled, postgres):
    url, bucket, manifest = long_run
    delays = DELAYS if command != "list" else DELAYS[:2]
    runs = []
    for delay in delays:
        args = {"backup": ("backup", "--kind", "full"), "restore": ("restore", "--object", manifest["object"]),
                "list": ("list",)}[command]
        process = start(*args, "--bucket", bucket, env={
            "STORAGE_EMULATOR_HOST": stalled, "DATABASE_URL": url,
            "TARGET_DATABASE_URL": new_database(postgres) if command == "restore" else ""})
        runs.append((delay, process))
    early = []
    for _, process in runs:
        wait_until(functools.partial(lambda p: catches_sigterm(p.pid) or p.poll() is not None, process),
                   "the handler's installation")
        early.append(not maps_a_library(process.pid, "psycopg"))
    assert any(early), "the SIGTERM handler was installed only once the client libraries had loaded"
    began = time.monotonic()
    for delay, process in sorted(runs, key=lambda run: run[0]):
        time.sleep(max(0.0, began + delay - time.monotonic()))
        assert process.poll() is None, f"{command} ended before SIGTERM at {delay} s"
        process.send_signal(signal.SIGTERM)
    for delay, process in runs:
        out, err = process.communicate(timeout=60)
        assert process.returncode == ExitCode.TERMINATED, f"SIGTERM at {delay} s: {out}{err}"
        assert "Traceback" not in err, f"SIGTERM at {delay} s: {err}"
        if command == "list":
            assert out == "" and err.strip().splitlines()[-1].startswith("error: list stopped by SIGTERM"), err
        else:
            log = one_log_line(out)
            assert (log["failure"], log["exitCode"], log["event"]) == ("terminated", 10, "raptorflow.backup"), log


def test_sigterm_during_a_parallel_restore_reports_exactly_the_tables_it_left(long_run, postgres):
    """pg_restore -j is not one transaction: stopped in the middle, the target holds some tables and not
    others. The log line says which, as the target holds them once the run is over."""
    _, bucket, manifest = long_run
    target = new_database(postgres)
    process = start("restore", "--bucket", bucket, "--object", manifest["object"], "--jobs", "2",
                    env={"TARGET_DATABASE_URL": target})

    def a_big_table_restored() -> bool:
        # pg_restore -j copies the largest tables first: with two workers, the third big one is still to come.
        try:
            with psycopg.connect(target) as connection:
                return any(connection.execute(f"SELECT count(*) FROM {table}").fetchone() == (25000,)  # noqa: S608
                           for table in ("big_a", "big_b", "big_c"))
        except psycopg.Error:
            return False

    wait_until(lambda: children_named(process.pid, "pg_restore"), "pg_restore's start")
    wait_until(lambda: a_big_table_restored() or process.poll() is not None, "a table's rows")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    log = one_log_line(out)
    assert process.returncode == ExitCode.TERMINATED and log["failure"] == "terminated", out + err
    assert "nothing was completed" not in log["message"], "the target holds what pg_restore -j committed"

    expected = manifest["tableRowCounts"]
    held = public_rows(target)
    complete = sorted(table for table, rows in expected.items() if held.get(table) == rows)
    assert log["tablesRestored"] == complete, log
    assert log["tablesNotRestored"] == sorted(set(expected) - set(complete)), log
    assert log["tablesNotRestored"], "SIGTERM came after the restore: nothing to report"
    assert "restore again with --replace" in log["message"]


# ---------------------------------------------------------------- reports tell the truth


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
