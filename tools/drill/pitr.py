"""STAND-IN for Supabase's point-in-time recovery, behind the Management API endpoints `tools.pitr` calls, done with
PostgreSQL's own PITR: a base backup and the WAL archived after it in a bucket of the site's GCS emulator
(tools/drill/wal_archive.py), and a restore that replays them up to `recovery_target_time`.

Endpoints (https://supabase.com/docs/reference/api, the OpenAPI document https://api.supabase.com/api/v1-json),
each behind `Authorization: Bearer <token>`:

    GET  /v1/projects/{ref}                              the project; `status` is ACTIVE_HEALTHY, RESTORING while a
                                                         restore runs, RESTORE_FAILED when one failed
    GET  /v1/projects/{ref}/database/backups             `pitr_enabled`, `walg_enabled`, `backups` (the base backup)
                                                         and `physical_backup_data`: the window, the Unix seconds
                                                         `earliest_physical_backup_date_unix` (the base backup's
                                                         end) and `latest_physical_backup_date_unix` (the newest
                                                         commit in the archived WAL)
    POST /v1/projects/{ref}/database/backups/restore-pitr  body {"recovery_time_target_unix": <int>}: 201 and a
                                                         restore in the background; 400 with a `message` for a
                                                         target outside the window or while a restore runs

A restore, as Supabase describes its own (https://supabase.com/docs/guides/platform/backups#point-in-time-recovery):
the server stopped, the base backup unpacked into a fresh data directory, the WAL fetched back, `recovery.signal`
with `restore_command`, `recovery_target_time` and `recovery_target_action = promote`
(https://www.postgresql.org/docs/15/continuous-archiving.html#BACKUP-PITR-RECOVERY,
https://www.postgresql.org/docs/15/runtime-config-wal.html#RUNTIME-CONFIG-WAL-RECOVERY-TARGET), started; healthy
once it accepts connections and is out of recovery (the recovery settings are then reset). The server is a
`Server`: the drill's US cluster (tools/drill/postgres.py) or a test's own.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import shutil
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from psycopg import sql

from core import limits
from tools.drill import plans, wal_archive
from tools.drill import storage as emulators
from tools.drill.wal_archive import BASE_BACKUP, BASE_BACKUP_MANIFEST, Server, call_in, utc_text
from tools.drill.world import ADDRESSES, enter, secret, serve_http, stop_http

if TYPE_CHECKING:
    from tools.drill.harness import Drill

ACTIVE, RESTORING, FAILED = "ACTIVE_HEALTHY", "RESTORING", "RESTORE_FAILED"
PORT = 8083
REF_LETTERS = 20
HEALTHY_TIMEOUT_SECONDS = wal_archive.HEALTHY_TIMEOUT_SECONDS
_ROUTE = re.compile(r"^/v1/projects/(?P<ref>[a-z]+)(?P<rest>/database/backups(?:/restore-pitr)?)?$")


@dataclass
class Settings:
    """Where the stand-in keeps its archive and how it reaches it."""

    ref: str
    token: str
    emulator_url: str
    bucket: str
    folder: Path
    """A private working folder (spool, base backup, restore files) that the `postgres` user can reach."""
    archive_timeout_seconds: int
    """archive_timeout: the longest WAL waits before it is archived (0: only when a segment fills or is switched)."""
    enter: Callable[[], None] = lambda: None
    """Called first in every thread that talks to the emulator (the drill enters the site's namespace)."""
    ship_poll_seconds: float = 0.2
    start_delay_seconds: float = 0.0
    """How long the project still answers ACTIVE_HEALTHY after a 201 (Supabase queues the restore; its dashboard
    sets RESTORING itself after a successful request)."""


@dataclass
class SupabasePitrStandIn:
    """The project's PITR: archiving from `start`, restores on request, the API answered by `handler()`'s class."""

    server: Server
    settings: Settings
    status: str = ACTIVE
    failure: str | None = None
    restores: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.spool = self.settings.folder / "spool"
        self.shipper: wal_archive.Shipper | None = None
        self.http: ThreadingHTTPServer | None = None
        self.worker: threading.Thread | None = None
        self.created = time.time()

    def bucket(self) -> storage.Bucket:
        """The archive's bucket (call from a thread that can reach the emulator)."""
        client = storage.Client(project="raptorflow-drill", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": self.settings.emulator_url})
        return client.bucket(self.settings.bucket)

    # ------------------------------------------------------------------ archiving

    def start(self) -> None:
        """Create the bucket, turn archiving on (a restart: archive_mode needs one), start shipping, and take
        the base backup; the window opens when it ends."""
        call_in(self.settings.enter, lambda: self.bucket().client.create_bucket(self.settings.bucket))
        self.settings.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.spool.mkdir(mode=0o700)
        shutil.chown(self.spool, "postgres", "postgres")
        with self.server.connect() as connection:
            for name, value in (("archive_mode", "on"), ("archive_command", wal_archive.archive_command(self.spool)),
                                ("archive_timeout", str(self.settings.archive_timeout_seconds))):
                connection.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        self.server.stop("fast")
        self.server.start()
        self.shipper = wal_archive.Shipper(self.spool, self.bucket, self.server.bindir, self.settings.ship_poll_seconds,
                                           self.settings.enter)
        self.shipper.start()
        self.base_backup()

    def base_backup(self) -> None:
        """pg_basebackup, uploaded with a manifest of when it ended (the earliest point a restore can reach)."""
        folder = self.settings.folder / f"basebackup-{int(time.time())}"
        shutil.chown(self.settings.folder, "postgres", "postgres")
        started = time.time()
        self.server.base_backup(folder)
        ended = time.time()

        def upload() -> None:
            bucket = self.bucket()
            bucket.blob(BASE_BACKUP).upload_from_filename(str(folder / "base.tar.gz"))
            bucket.blob(BASE_BACKUP_MANIFEST).upload_from_string(json.dumps(
                {"startedAtUnix": started, "endedAtUnix": ended, "insertedAt": utc_text(ended)}))

        call_in(self.settings.enter, upload)
        shutil.rmtree(folder)

    def window(self) -> tuple[int | None, int | None]:
        """(earliest, latest) Unix seconds a restore can reach: from the base backup's end to the newest commit in
        the archived WAL (whole seconds inside them); None where there is nothing."""
        def read() -> tuple[int | None, int | None]:
            bucket = self.bucket()
            manifest = bucket.blob(BASE_BACKUP_MANIFEST)
            if not manifest.exists():
                return None, None
            ended = float(json.loads(manifest.download_as_bytes())["endedAtUnix"])
            newest = wal_archive.newest_commit(bucket)
            return math.ceil(ended), None if newest is None or newest < ended else math.floor(newest)
        return call_in(self.settings.enter, read)

    def stop(self) -> None:
        """Stop serving and shipping (a restore under way finishes first)."""
        stop_http(self.http)
        self.http = None
        if self.worker is not None:
            self.worker.join(HEALTHY_TIMEOUT_SECONDS)
        if self.shipper is not None:
            self.shipper.stop()

    # ------------------------------------------------------------------ restoring

    def request_restore(self, target: int) -> tuple[int, dict[str, Any]]:
        """Check the target against the window and start the restore in the background: (HTTP status, body)."""
        with self.lock:
            if self.status == RESTORING or (self.worker is not None and self.worker.is_alive()):
                return 400, {"message": "a restore is already in progress for this project"}
            earliest, latest = self.window()
            if earliest is None or latest is None or not earliest <= target <= latest:
                span = ("no backup to restore from yet" if earliest is None or latest is None
                        else f"the recovery window is {utc_text(earliest)} to {utc_text(latest)}")
                return 400, {"message": f"recovery_time_target_unix {target} ({utc_text(target)}) is outside the "
                                        f"archived WAL: {span}"}
            self.failure = None
            if not self.settings.start_delay_seconds:
                self.status = RESTORING
            self.worker = threading.Thread(target=self._restore, args=(target,), name="rfdr-pitr-restore", daemon=True)
            self.worker.start()
        return 201, {}

    def _restore(self, target: int) -> None:
        time.sleep(self.settings.start_delay_seconds)
        self.status = RESTORING
        began = time.monotonic()
        try:
            wal_archive.replay(self.server, self.settings.folder / f"restore-{target}", self.bucket,
                               self.settings.enter, target)
        except Exception as exc:  # noqa: BLE001 - the project reports RESTORE_FAILED, as Supabase's does
            self.failure = f"{type(exc).__name__}: {str(exc)[:300]}"
            self.status = FAILED
            return
        self.restores.append({"targetUnix": target, "target": utc_text(target),
                              "seconds": round(time.monotonic() - began, 2)})
        self.status = ACTIVE

    # ------------------------------------------------------------------ the API

    def project(self) -> dict[str, Any]:
        """GET /v1/projects/{ref}: V1ProjectWithDatabaseResponse's fields but `database`."""
        return {"id": self.settings.ref, "ref": self.settings.ref, "name": "raptorflow (drill)",
                "organization_id": "drill", "organization_slug": "drill", "region": "us-east-1",
                "created_at": utc_text(self.created), "status": self.status}

    def backups(self) -> dict[str, Any]:
        """GET /v1/projects/{ref}/database/backups."""
        earliest, latest = self.window()
        data = {} if earliest is None else {"earliest_physical_backup_date_unix": earliest,
                                            "latest_physical_backup_date_unix": latest}
        listed = [] if earliest is None else [{"is_physical_backup": True, "status": "COMPLETED",
                                               "inserted_at": utc_text(earliest)}]
        return {"region": "us-east-1", "walg_enabled": True, "pitr_enabled": True, "backups": listed,
                "physical_backup_data": data}

    def answer(self, method: str, path: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of one request."""
        if authorization != f"Bearer {self.settings.token}":
            return 401, {"message": "Unauthorized"}
        match = _ROUTE.match(path.split("?", 1)[0])
        if match is None or match["ref"] != self.settings.ref:
            return 404, {"message": "Not Found"}
        rest = match["rest"]
        if method == "GET" and rest is None:
            return 200, self.project()
        if method == "GET" and rest == "/database/backups":
            return 200, self.backups()
        if method == "POST" and rest == "/database/backups/restore-pitr":
            try:
                target = json.loads(body)["recovery_time_target_unix"]
            except (ValueError, KeyError, TypeError):
                target = None
            if not isinstance(target, int) or isinstance(target, bool) or target < 0:
                return 400, {"message": "recovery_time_target_unix must be a non-negative integer"}
            return self.request_restore(target)
        return 404, {"message": "Not Found"}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class of this stand-in."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    status, body = stand_in.answer(method, self.path, self.headers.get("Authorization", ""),
                                                   self.rfile.read(length))
                except Exception as exc:  # noqa: BLE001 - a 500 with its class, as an API would
                    status, body = 500, {"message": f"internal error: {type(exc).__name__}"}
                data = json.dumps(body).encode() if body or status != 201 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def api_url() -> str:
    """The stand-in's base URL (what `tools.pitr --api-url` takes), in rfdr-net."""
    return f"http://{ADDRESSES['api']}:{PORT}"


def start_in_drill(drill: Drill) -> SupabasePitrStandIn:
    """The drill's US primary archived into a bucket of the US emulator, every pitr.rpoMinutes of the prod plan
    compressed by the time scale (archive_timeout, at least 1 s), and the API served in rfdr-net."""
    declared = plans.objectives(drill.plans.prod).get("pitr") or {}
    rpo_minutes = float(declared.get("rpoMinutes", limits.PITR_RPO_MINUTES))
    ref = "".join(secrets.choice(string.ascii_lowercase) for _ in range(REF_LETTERS))
    settings = Settings(ref, secret(secrets.token_hex(20)), emulators.url("us"), f"supabase-pitr-{ref}",
                        drill.us.home / "pitr", max(1, round(rpo_minutes * 60 / drill.options.time_scale)),
                        enter=lambda: enter("us"))
    stand_in = SupabasePitrStandIn(drill.us, settings)
    drill.closers.append(stand_in.stop)
    stand_in.start()
    stand_in.http = serve_http("net", (ADDRESSES["api"], PORT), stand_in.handler(), "rfdr-supabase-stand-in")
    drill.progress(f"Supabase PITR stand-in: WAL archived every {settings.archive_timeout_seconds} s into "
                   f"{settings.bucket} (us), base backup taken, API at {api_url()}")
    return stand_in
