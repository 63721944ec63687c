"""The steady write workload and its ledger: what was written, acknowledged and when, so losses are exact.

A client in rfdr-net (the internet) reaches the app only through the public name: it asks the DNS server,
follows the CNAME chain to a site's address, keeps the answer for its TTL divided by the time scale (as a
resolver caches it), and POSTs one ledger row at a time. Every row carries the client's sequence number and
a payload derived from it, so each row's checksum is known without trusting the database. The workload's
own ledger records every acknowledged write: id, commit time and WAL positions around the commit.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from tools.drill import dns
from tools.drill.world import enter

APP_PORT = 8080
REQUEST_TIMEOUT_SECONDS = 2.0
MIN_CACHE_SECONDS = 0.2
"""The client keeps a DNS answer for its TTL divided by the time scale, but never less than this."""
SCHEMA = """
CREATE TABLE ledger (
    id bigserial PRIMARY KEY,
    client_seq bigint NOT NULL UNIQUE,
    payload text NOT NULL,
    site text NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX ledger_committed_at_idx ON ledger (committed_at);
CREATE TABLE documents (id bigint PRIMARY KEY, body text NOT NULL);
"""
# Rows of 1 KiB of distinct hex digests (zlib shrinks them about 2:1, like application data; a repeated string
# would shrink 30:1 and flatter the dump), in batches that keep WAL bursts small.
FILL_ROW = """INSERT INTO documents
              SELECT i, (SELECT string_agg(md5(i::text || ':' || j::text || %s), '') FROM generate_series(1, 32) AS j)
              FROM generate_series(%s::bigint, %s::bigint) AS i"""
FILL_BATCH_ROWS = 4_000


def payload(run: str, seq: int) -> str:
    """The payload of the client's row `seq` (its checksum is known without the database)."""
    return hashlib.sha256(f"{run}:{seq}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Ack:
    """A write the app acknowledged."""

    seq: int
    id: int
    site: str
    database: str
    committed_at: datetime
    lsn_before: str
    lsn_after: str
    acked_at: float  # monotonic
    acked_wall: datetime  # after the commit: an upper bound of its time (committed_at is when the INSERT ran)


@dataclass
class Ledger:
    """The workload's own record of its writes."""

    run: str
    acks: dict[int, Ack] = field(default_factory=dict)
    issued: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, reason)
    explained_lost: dict[int, str] = field(default_factory=dict)  # seq -> which scenario lost it and why
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first_ack_after(self, moment: float, accept: Callable[[Ack], bool] = lambda ack: True) -> Ack | None:
        """The first write acknowledged after `moment` (monotonic) that `accept`s."""
        with self.lock:
            later = [a for a in self.acks.values() if a.acked_at > moment and accept(a)]
        return min(later, key=lambda a: a.acked_at, default=None)


def lsn(text: str) -> int:
    """A WAL position 'X/Y' as a number."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class Workload(threading.Thread):
    """Writes one ledger row at a time through the public name until stopped (bounded in count and time)."""

    def __init__(self, hostname: str, ledger: Ledger, interval_seconds: float, time_scale: float,
                 max_seconds: float) -> None:
        super().__init__(name="rfdr-workload", daemon=True)
        self.hostname, self.ledger, self.interval = hostname, ledger, interval_seconds
        self.time_scale, self.max_seconds = time_scale, max_seconds
        self.max_writes = int(max_seconds / interval_seconds) + 1
        self.halt = threading.Event()
        self.resolved: tuple[str | None, float] = (None, 0.0)  # address, monotonic expiry
        self.answers: list[tuple[float, str | None]] = []  # every fresh resolution: (time, address)

    def address(self) -> str | None:
        """The site address the public name resolves to, from the cache while its TTL lasts."""
        address, expiry = self.resolved
        if time.monotonic() < expiry:
            return address
        answer = dns.query(self.hostname)
        ttl = max(answer.ttl / self.time_scale, MIN_CACHE_SECONDS) if answer.chain else MIN_CACHE_SECONDS  # negative: retry soon
        self.resolved = (answer.address, time.monotonic() + ttl)
        if not self.answers or self.answers[-1][1] != answer.address:
            self.answers.append((time.monotonic(), answer.address))
        return answer.address

    def write(self, seq: int) -> dict[str, Any] | str:
        """One POST /ledger through the public name: the app's answer, or why it failed."""
        address = self.address()
        if address is None:
            return "no DNS answer"
        connection = http.client.HTTPConnection(address, APP_PORT, timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            body = json.dumps({"seq": seq, "payload": payload(self.ledger.run, seq)})
            connection.request("POST", "/ledger", body, {"Host": self.hostname, "Content-Type": "application/json"})
            response = connection.getresponse()
            answer = json.loads(response.read() or b"{}")
            return answer if response.status == 200 else f"HTTP {response.status} {answer.get('error', '')}".strip()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return type(exc).__name__
        finally:
            connection.close()

    def run(self) -> None:
        """Write until stopped, `max_seconds` pass or `max_writes` are issued."""
        enter("net")
        started = time.monotonic()
        while not self.halt.is_set() and time.monotonic() - started < self.max_seconds \
                and self.ledger.issued < self.max_writes:
            with self.ledger.lock:
                self.ledger.issued += 1
                seq = self.ledger.issued
            result = self.write(seq)
            now = time.monotonic()
            with self.ledger.lock:
                if isinstance(result, dict):
                    self.ledger.acks[seq] = Ack(seq, int(result["id"]), result["site"], result["database"],
                                                datetime.fromisoformat(result["committedAt"]), result["lsnBefore"],
                                                result["lsnAfter"], now, datetime.now(UTC))
                else:
                    self.ledger.failures.append((now, result))
            self.halt.wait(self.interval)

    def stop(self) -> None:
        """Stop after the current write."""
        self.halt.set()
        self.join(10)


@dataclass
class LedgerCheck:
    """The database's ledger against the workload's: counts, checksum and every difference."""

    rows: int
    checksum_ok: bool
    missing: list[int]  # acknowledged, not explained, and not in the database: unexplained loss
    unacknowledged: list[int]  # in the database but never acknowledged: in flight when something broke
    foreign: list[int]  # in the database with a payload the client never wrote

    @property
    def ok(self) -> bool:
        """No unexplained loss and nothing the client did not write."""
        return not self.missing and not self.foreign and self.checksum_ok

    def to_json(self) -> dict[str, Any]:
        """For the report's evidence."""
        return {"rows": self.rows, "checksumOk": self.checksum_ok, "missing": self.missing[:50],
                "unacknowledged": self.unacknowledged[:50], "foreign": self.foreign[:50], "ok": self.ok}


def check_ledger(connection: psycopg.Connection, ledger: Ledger) -> LedgerCheck:
    """Compare the database's ledger with the workload's: every acknowledged write not explained lost is there,
    and every row there is one the client wrote, with the payload it wrote (row checksums)."""
    # Acknowledged before the query, so committed before it; issued after it, so no row can be beyond it.
    with ledger.lock:
        acked, explained = set(ledger.acks), set(ledger.explained_lost)
    rows = connection.execute("SELECT client_seq, payload, md5(payload) FROM ledger ORDER BY client_seq").fetchall()
    with ledger.lock:
        issued = ledger.issued
    present = {seq for seq, _, _ in rows}
    foreign = [seq for seq, text, _ in rows if seq > issued or text != payload(ledger.run, seq)]
    checksum_ok = all(digest == hashlib.md5(payload(ledger.run, seq).encode()).hexdigest()  # noqa: S324 - a checksum
                      for seq, _, digest in rows if seq <= issued)
    return LedgerCheck(len(rows), checksum_ok, sorted(acked - explained - present), sorted(present - acked),
                       sorted(foreign))
