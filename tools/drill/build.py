"""Standing up the drill's world from the plans, part by part: the data in the primary, an emulator per site with
the buckets its plan names, Knot DNS behind the Cloudflare API stand-in, the Vercel stand-in and the app
stand-ins it deploys, and the replica's lag sampler. The Drill (harness.py) calls these in order and keeps
what they return.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from core.contracts import ResourceType
from tools.drill import certs, cloudflare, dns, plans, postgres, storage, vercel, workload
from tools.drill.world import ADDRESSES, USAGE, DrillError, World, in_site, secret

MAX_DRILL_SECONDS = 4 * 3600
APP_PORT = workload.APP_PORT
APP_TLS_PORT = 443
SITES = ("us", "eu")
APP_START_TIMEOUT_SECONDS = 30.0


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


def database_url(cluster: postgres.Cluster, database: str) -> str:
    """What the drill supplies as the database URL variable: the cluster's database, without the password (the
    sensitive key variable holds it)."""
    return f"postgresql://{postgres.ROLE}@{cluster.address}:{postgres.PORT}/{database}"


def site_values(stack: str) -> dict[str, tuple[str, str]]:
    """The stack's plain Vercel variables: name -> (primary value, standby value), from its config (the plan's
    JSON shows every Vercel value as a secret)."""
    from components.config import parse_stack_config
    from tools.offline import supply_missing_secrets
    from tools.stack_files import read_stack_config

    values, secret_keys = read_stack_config(stack, project_root())
    supply_missing_secrets(stack, values, secret_keys)
    config = parse_stack_config(stack, values, secret_keys)
    return {k: (v.primary, v.standby) for k, v in config.vercel.variables.items()} if config.vercel else {}


def alive(world: World, name: str) -> bool:
    """Whether a process started by `spawn` still runs."""
    process = world.processes.get(name)
    return process is not None and process.poll() is None


@dataclass
class Apps:
    """The app stand-ins, each serving the current production deployment of the Vercel stand-in."""

    world: World
    tls: certs.Certificates

    def build(self, deployment: vercel.Deployment) -> None:
        """Restart every running app (every site's at the first deployment) with the deployment's variables;
        return when each answers with the deployment's id (DrillError when one does not)."""
        document = json.dumps({"id": deployment.id, "env": deployment.variables})
        path = self.world.secret_file(f"deployment-{deployment.id}.json", document)
        sites = [site for site in SITES if alive(self.world, f"app-{site}")] or list(SITES)
        for site in sites:
            self.world.stop(f"app-{site}")
        for site in sites:
            self.world.spawn(site, f"app-{site}", [
                sys.executable, "-m", "tools.drill.app", "--site", site, "--port", str(APP_PORT),
                "--deployment-file", str(path), "--url-variable", vercel.URL_VARIABLE,
                "--key-variable", vercel.KEY_VARIABLE, "--tls-port", str(APP_TLS_PORT),
                "--tls-cert", str(self.tls.certificate), "--tls-key", str(self.tls.key)], cwd=project_root())
        for site in sites:
            in_site("net", self._wait_serving, site, deployment.id, timeout=APP_START_TIMEOUT_SECONDS + 5)

    def _wait_serving(self, site: str, deployment: str) -> None:
        deadline = time.monotonic() + APP_START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not alive(self.world, f"app-{site}"):
                raise DrillError(USAGE, f"the {site} app stand-in exited at start (see its log)")
            if probe(site, "/deployment").get("deployment") == deployment:
                return
            time.sleep(0.05)
        raise DrillError(USAGE, f"the {site} app stand-in did not serve deployment {deployment} within "
                                f"{APP_START_TIMEOUT_SECONDS:.0f} s")


def probe(site: str, path: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET one of the site's app paths over its own address (call it in rfdr-net): the JSON answer with its
    `httpStatus`, or the error met."""
    try:
        with urllib.request.urlopen(f"http://{ADDRESSES[site]}:{APP_PORT}{path}", timeout=timeout) as response:
            return {**json.loads(response.read()), "httpStatus": response.status}
    except urllib.error.HTTPError as exc:
        try:
            return {**json.loads(exc.read()), "httpStatus": exc.code}
        except ValueError:
            return {"httpStatus": exc.code}
    except (OSError, ValueError) as exc:
        return {"httpStatus": None, "error": type(exc).__name__}


def start_vercel(world: World, dr: dict[str, Any], primary: postgres.Cluster, database: str,
                 closers: list[Callable[[], None]]) -> tuple[vercel.VercelStandIn, certs.Certificates]:
    """The Vercel stand-in with the dr plan's project variables, the drill's values in them (the database URL
    names the primary's database, the key its password), and its first production deployment built: the app
    stand-ins serving HTTP on the workload's port and HTTPS for every name of the zone."""
    declared = plans.resources(dr, ResourceType.VERCEL_VARIABLE)
    if not declared:
        raise DrillError(USAGE, "the dr plan has no Vercel project variables (standby.vercel): nothing to redeploy")
    plain = site_values(dr["stack"])
    supplied = {vercel.URL_VARIABLE: database_url(primary, database), vercel.KEY_VARIABLE: primary.password}
    variables = []
    for resource in declared:
        inputs = resource["inputs"]
        key = inputs["key"]
        value = supplied.get(key) or (plain[key][0] if key in plain else secret(secrets.token_hex(16)))
        variables.append(vercel.Variable(f"env_{secrets.token_hex(8)}", key, value, list(inputs["targets"]),
                                         bool(inputs.get("sensitive"))))
    first = declared[0]["inputs"]
    names = sorted({r["name"] for r in plans.dns_records(dr)} | {n for n in plans.failover_targets(dr) if not _is_address(n)})
    apps = Apps(world, certs.make(world.folder / "tls", names))
    stand_in = vercel.VercelStandIn(first["projectId"], first.get("teamId"), secret(secrets.token_hex(20)),
                                    variables, apps.build, first["projectId"])
    stand_in.start()
    closers.append(stand_in.stop)
    stand_in.deploy()
    return stand_in, apps.tls


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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
    for address, site in sorted(targets.items()):
        if _is_address(address):  # a record naming a public address: the site answers on it too
            world.add_address(site, address)
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
