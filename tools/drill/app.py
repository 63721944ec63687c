"""STAND-IN for the Vercel deployment of one site: a small HTTP service in front of the site's database.

    python -m tools.drill.app --site us --listen 10.213.0.10 --port 8080 --database-url-file F

    GET  /health   200 only when its database accepts writes (reachable and not in recovery), else 503
    POST /ledger   {"seq": N, "payload": "..."} appends a row to the ledger and answers with the row's id,
                   commit time and the WAL positions around its commit (so a drill can tell which writes a
                   replica had received)

The database URL is read from the file (a mounted secret) and never printed; SIGHUP re-reads it and
reconnects - a redeploy with new environment variables, which is how the drill repoints the app. SIGUSR1
turns maintenance mode on (every request 503, the database untouched) and SIGUSR2 off: a table is restored
into the live database only while nothing writes to it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

CONNECT_TIMEOUT_SECONDS = 2
STATEMENT_TIMEOUT_MS = 3000
INSERT = """INSERT INTO ledger (client_seq, payload, site) VALUES (%s, %s, %s)
            RETURNING id, committed_at, current_database()"""


class Backend:
    """One database connection, reopened after any failure or a SIGHUP."""

    def __init__(self, url_file: Path, site: str) -> None:
        self.url_file, self.site = url_file, site
        self.lock = threading.Lock()
        self.connection: psycopg.Connection | None = None
        self.maintenance = threading.Event()

    def reset(self) -> None:
        """Forget the connection; the next request reads the URL file again."""
        with self.lock:
            self._close()

    def _close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except psycopg.Error:
                pass
            self.connection = None

    def _connection(self) -> psycopg.Connection:
        if self.connection is None or self.connection.closed:
            self.connection = psycopg.connect(self.url_file.read_text().strip(), autocommit=True,
                                              connect_timeout=CONNECT_TIMEOUT_SECONDS,
                                              options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")
        return self.connection

    def run(self, work: Any) -> tuple[int, dict[str, Any]]:
        """(status, body): `work(connection)`'s result, or 503 naming the failure class (never the URL)."""
        with self.lock:
            if self.maintenance.is_set():
                return 503, {"site": self.site, "error": "maintenance"}
            try:
                return 200, work(self._connection())
            except (psycopg.Error, OSError) as exc:
                self._close()
                return 503, {"site": self.site, "error": type(exc).__name__}

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
            except BrokenPipeError:
                pass

        def do_GET(self) -> None:
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
    parser.add_argument("--listen", required=True)
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--database-url-file", type=Path, required=True)
    args = parser.parse_args(argv)
    backend = Backend(args.database_url_file, args.site)
    server = ThreadingHTTPServer((args.listen, args.port), handler(backend))
    signal.signal(signal.SIGHUP, lambda *_: backend.reset())
    signal.signal(signal.SIGUSR1, lambda *_: backend.maintenance.set())
    signal.signal(signal.SIGUSR2, lambda *_: backend.maintenance.clear())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
