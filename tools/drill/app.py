"""STAND-IN for one Vercel deployment serving one site: a small HTTP(S) service in front of a database.

    python -m tools.drill.app --site us --deployment-file F --url-variable SUPABASE_URL \
        --key-variable SUPABASE_SERVICE_ROLE_KEY [--port 8080] [--tls-port 443 --tls-cert C --tls-key K]

    GET  /health   200 only when its database accepts writes (reachable and not in recovery), else 503
    GET  /deployment  the deployment it serves (no database access: it answers as soon as it listens)
    POST /ledger   {"seq": N, "payload": "..."} appends a row to the ledger and answers with the row's id,
                   commit time and the WAL positions around its commit (so a drill can tell which writes a
                   replica had received)

Every answer names the site and the deployment served. The database is the one the deployment's environment
variables name (F, a root-only file the Vercel stand-in writes when it builds a deployment: the deployment's
id and its variables as they were when it was created): the URL variable gives the database, the key variable
its password. The process reads F once, at start: as on Vercel, a changed variable reaches the app only when a
new deployment replaces it (tools/drill/vercel.py restarts the app). Nothing of F is ever printed. SIGUSR1
turns maintenance mode on (every request 503, the database untouched) and SIGUSR2 off: a table is restored
into the live database only while nothing writes to it.
"""

from __future__ import annotations

import argparse
import json
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

CONNECT_TIMEOUT_SECONDS = 2
STATEMENT_TIMEOUT_MS = 3000
# A database that vanishes (its site cut off) answers nothing, and statement_timeout is the server's: without a
# bound on unacknowledged data the open connection would wait for TCP's retransmissions, minutes.
TCP_USER_TIMEOUT_MS = 3000
INSERT = """INSERT INTO ledger (client_seq, payload, site) VALUES (%s, %s, %s)
            RETURNING id, committed_at, current_database()"""


class Backend:
    """One database connection to the deployment's database, reopened after any failure."""

    def __init__(self, site: str, deployment: str, url: str, password: str) -> None:
        self.site, self.deployment, self.url, self.password = site, deployment, url, password
        self.lock = threading.Lock()
        self.connection: psycopg.Connection | None = None
        self.maintenance = threading.Event()
        # After a failed connect, requests fail at once for a connect timeout (a connection pool's back-off):
        # with the database unreachable, each would otherwise wait its turn for its own connect timeout.
        self.retry_at, self.last_error = 0.0, ""

    def _close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except psycopg.Error:
                pass
            self.connection = None

    def _connection(self) -> psycopg.Connection:
        if self.connection is None or self.connection.closed:
            if time.monotonic() < self.retry_at:
                raise ConnectionError(self.last_error)
            try:
                self.connection = self._connect()
            except psycopg.Error as exc:
                self.retry_at, self.last_error = time.monotonic() + CONNECT_TIMEOUT_SECONDS, type(exc).__name__
                raise
        return self.connection

    def _connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url, password=self.password, autocommit=True,
                               connect_timeout=CONNECT_TIMEOUT_SECONDS, tcp_user_timeout=TCP_USER_TIMEOUT_MS,
                               options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")

    def run(self, work: Any) -> tuple[int, dict[str, Any]]:
        """(status, body): `work(connection)`'s result, or 503 naming the failure class (never the URL)."""
        if time.monotonic() < self.retry_at and self.connection is None:
            return 503, {"site": self.site, "deployment": self.deployment, "error": self.last_error}
        with self.lock:
            if self.maintenance.is_set():
                return 503, {"site": self.site, "deployment": self.deployment, "error": "maintenance"}
            try:
                return 200, {**work(self._connection()), "deployment": self.deployment}
            except ConnectionError:
                return 503, {"site": self.site, "deployment": self.deployment, "error": self.last_error}
            except (psycopg.Error, OSError) as exc:
                self._close()
                return 503, {"site": self.site, "deployment": self.deployment, "error": type(exc).__name__}

    def health(self, connection: psycopg.Connection) -> dict[str, Any]:
        """Raises unless the database accepts writes."""
        row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
        if row is None or row[0]:
            raise psycopg.errors.ReadOnlySqlTransaction("the database is a replica (read-only)")
        connection.execute("SELECT max(client_seq) FROM ledger").fetchone()
        return {"site": self.site, "status": "ok"}

    def append(self, seq: int, payload: str) -> Any:
        """The write endpoint's work: insert, with the WAL position before and after the commit."""
        def work(connection: psycopg.Connection) -> dict[str, Any]:
            before = connection.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            row = connection.execute(INSERT, (seq, payload, self.site)).fetchone()
            after = connection.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            assert before is not None and row is not None and after is not None  # each returns one row
            return {"site": self.site, "database": row[2], "seq": seq, "id": row[0], "committedAt": row[1].isoformat(),
                    "lsnBefore": before[0], "lsnAfter": after[0]}
        return work


def handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
    """The request handler bound to one backend."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:  # the client went away (a probe that timed out)
                pass

        def do_GET(self) -> None:
            if self.path == "/deployment":
                self._answer(200, {"site": backend.site, "deployment": backend.deployment})
                return
            if self.path != "/health":
                self._answer(404, {"error": "not found"})
                return
            self._answer(*backend.run(backend.health))

        def do_POST(self) -> None:
            if self.path != "/ledger":
                self._answer(404, {"error": "not found"})
                return
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                seq, payload = int(request["seq"]), str(request["payload"])
            except (ValueError, KeyError, TypeError):
                self._answer(400, {"error": "expected {seq, payload}"})
                return
            self._answer(*backend.run(backend.append(seq, payload)))

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the workload records every answer."""

    return Handler


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m tools.drill.app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--deployment-file", type=Path, required=True)
    parser.add_argument("--url-variable", required=True)
    parser.add_argument("--key-variable", required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    args = parser.parse_args(argv)
    deployment = json.loads(args.deployment_file.read_text())
    variables = deployment["env"]
    backend = Backend(args.site, deployment["id"], variables[args.url_variable], variables[args.key_variable])
    # Every address of the site's namespace: its own, and the public ones its DNS records name.
    servers = [ThreadingHTTPServer(("0.0.0.0", args.port), handler(backend))]  # noqa: S104 - a namespace's own
    if args.tls_port:
        secure = ThreadingHTTPServer(("0.0.0.0", args.tls_port), handler(backend))  # noqa: S104
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        # The handshake happens in the request's thread: a client that stalls holds up no one else.
        secure.socket = context.wrap_socket(secure.socket, server_side=True, do_handshake_on_connect=False)
        servers.append(secure)
    signal.signal(signal.SIGUSR1, lambda *_: backend.maintenance.set())
    signal.signal(signal.SIGUSR2, lambda *_: backend.maintenance.clear())
    def stop(*_: Any) -> None:
        for server in servers:
            threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    servers[0].serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
