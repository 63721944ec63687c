"""Standing up the drill's world from the plans, part by part: the data in the primary, an emulator per site with
the buckets its plan names, Knot DNS behind the Cloudflare API stand-in, the app stand-ins and the replica's
lag sampler. The Drill (harness.py) calls these in order and keeps what they return.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from tools.drill import cloudflare, dns, plans, postgres, storage, workload
from tools.drill.world import ADDRESSES, USAGE, DrillError, World, in_site, secret

MAX_DRILL_SECONDS = 4 * 3600
APP_PORT = workload.APP_PORT


def project_root() -> Path:
    """The project's folder, where the drill runs the project's own modules (tools.offline is slow to import,
    so only when needed)."""
    from tools.offline import ROOT

    return ROOT


def fill(cluster: postgres.Cluster, database: str, size_mb: int, tag: str, progress: Callable[[str], None]) -> None:
    """Load `size_mb` of data into the primary (streamed to the replica as it is written)."""
    target = size_mb * 1024 * 1024
    with cluster.connect(database) as connection:
        first = 1
        for _ in range(target // (workload.FILL_BATCH_ROWS * 512) + 10):  # a batch adds >= 2 MB
            size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
            assert size is not None  # one row
            if size[0] >= target:
                break
            connection.execute(workload.FILL_ROW, (tag, first, first + workload.FILL_BATCH_ROWS - 1))
            first += workload.FILL_BATCH_ROWS
            if first % (workload.FILL_BATCH_ROWS * 25) == 1:
                progress(f"loading data: {size[0] / 1048576:.0f} of {size_mb} MB")
        connection.execute("VACUUM ANALYZE")


def start_storage(world: World, stacks: plans.Plans, progress: Callable[[str], None]) -> tuple[list[str], list[str]]:
    """An emulator per site with the buckets its plan names: (US buckets, EU buckets)."""
    us_buckets = [stacks.prod["outputs"]["databaseDumpsBucket"], stacks.prod["outputs"]["userFilesBucket"]]
    eu_buckets = [stacks.dr["outputs"]["databaseDumpsReplicaBucket"], stacks.dr["outputs"]["userFilesReplicaBucket"]]
    storage.start(world, "us", us_buckets)
    storage.start(world, "eu", eu_buckets)
    progress(f"fake-gcs-server: us {', '.join(us_buckets)}; eu {', '.join(eu_buckets)}")
    return us_buckets, eu_buckets


def start_apps(world: World, clusters: dict[str, postgres.Cluster], database: str) -> None:
    """The Vercel stand-in of each site, each in front of its own database."""
    for site, cluster in clusters.items():
        url_file = world.secret_file(f"{site}-app.url", cluster.url(database))
        world.spawn(site, f"app-{site}", [sys.executable, "-m", "tools.drill.app", "--site", site,
                                          "--listen", ADDRESSES[site], "--port", str(APP_PORT),
                                          "--database-url-file", str(url_file)], cwd=project_root())


@dataclass
class Zone:
    """The zone the dr plan manages: Knot DNS serving it, behind the Cloudflare API stand-in."""

    zone_id: str
    domain: str
    planned: list[dict[str, Any]]
    """The plan's records (name, type, content, ttl, proxied)."""
    token: str
    knot: dns.KnotServer
    cloudflare: cloudflare.CloudflareStandIn
    hostname: str
    """The DNS-only name the workload writes through: its TTL is what a failover waits for."""

    def call(self, method: str, path: str, body: bytes | None = None) -> Any:
        """A request to the Cloudflare API stand-in, from the internet's namespace."""
        def call() -> Any:
            request = urllib.request.Request(f"{cloudflare.base_url()}/zones/{self.zone_id}/dns_records{path}",  # noqa: S310
                                             data=body, method=method, headers={"Authorization": f"Bearer {self.token}"})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the drill's own stand-in
                data = response.read()
            return json.loads(data) if data.startswith(b"{") else data.decode()
        return in_site("net", call, timeout=30)

    def answers(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the DNS server answers for each record's name and type."""
        def ask() -> list[dict[str, Any]]:
            found = []
            for record in records:
                answer = dns.query(record["name"], record["type"])
                first = answer.first()
                found.append({"name": record["name"], "type": record["type"], "matches": dns.matches(record, answer),
                              "answer": None if first is None else {"name": first[0], "type": first[1],
                                                                    "content": first[2], "ttl": first[3]}})
            return found
        return in_site("net", ask, timeout=30)


def start_zone(world: World, dr: dict[str, Any], progress: Callable[[str], None],
               closers: list[Callable[[], None]]) -> Zone:
    """knotd with the dr plan's records (and the sites' origin records), behind the Cloudflare API stand-in."""
    records = plans.dns_records(dr)
    if not records:
        raise DrillError(USAGE, "the dr plan has no Cloudflare DNS records (failover.mode dns): nothing to drill")
    zone_id = records[0]["zoneId"]
    domain = min((r["name"] for r in records), key=len)
    targets = plans.failover_targets(dr)
    origins = [{"name": name, "type": "A", "content": ADDRESSES[site], "ttl": dns.AUTO_TTL_SECONDS, "proxied": False}
               for name, site in sorted(targets.items()) if name.endswith("." + domain)]
    planned = [{k: r[k] for k in ("name", "type", "content", "ttl", "proxied")} for r in records]
    token = secret(secrets.token_hex(20))
    knot = dns.KnotServer(world, domain)
    api = cloudflare.CloudflareStandIn(zone_id, domain, token, knot)
    api.load(planned + origins)
    api.start()
    closers.append(api.stop)
    # Clients use a DNS-only name: its TTL is what a failover waits for (proxied names switch at the edge).
    reachable = [r for r in records if r["type"] == "CNAME" and r["content"] in targets]
    chosen = next((r for r in reachable if not r["proxied"]), reachable[0] if reachable else None)
    if chosen is None:
        raise DrillError(USAGE, "no planned record points at a failover target name in the zone")
    progress(f"knotd serving {domain} ({len(records)} planned records) at {ADDRESSES['dns']}")
    return Zone(zone_id, domain, planned, token, knot, api, chosen["name"])


class LagSampler(threading.Thread):
    """Samples the replica's replay lag on the primary (pg_stat_replication) until the primary is gone."""

    def __init__(self, primary: postgres.Cluster) -> None:
        super().__init__(name="rfdr-lag", daemon=True)
        self.primary = primary
        self.max_lag = 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        """Every 0.25 s, bounded by the drill's maximum duration."""
        deadline = time.monotonic() + MAX_DRILL_SECONDS
        while not self.halt.is_set() and time.monotonic() < deadline:
            try:
                with self.primary.connect() as connection:
                    while not self.halt.wait(0.25):
                        row = connection.execute("SELECT max(extract(epoch FROM greatest(replay_lag, write_lag))) "
                                                 "FROM pg_stat_replication").fetchone()
                        if row and row[0] is not None:
                            self.max_lag = max(self.max_lag, float(row[0]))
            except psycopg.Error:
                self.halt.wait(0.5)  # the primary restarts (corruption scenario) or is gone

    def stop(self) -> None:
        """Stop sampling."""
        self.halt.set()
        self.join(5)
