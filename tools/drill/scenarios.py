"""The drill: build the two-site world from the plans, break it as each scenario says, recover with the
project's own tools and runbook, and measure.

Scenarios run in one world, in this order (each leaves a working world for the next):
dns-loss, data-deletion, table-drop, database-corruption, regional-outage.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from backup_job import storage as layout
from tools.drill import cloudflare, deletion, dns, plans, postgres, report, storage, workload
from tools.drill.plans import PlanRun
from tools.drill.report import ScenarioResult
from tools.drill.transfer import TransferStandIn
from tools.drill.workload import Ledger, Workload, check_ledger, lsn
from tools.drill.world import ADDRESSES, MISSED, DrillError, World, in_namespace, in_site, run, secret

SCENARIOS = ("dns-loss", "data-deletion", "table-drop", "database-corruption", "regional-outage")
DATABASE = "raptorflow"
APP_PORT = workload.APP_PORT
RECOVERY_TIMEOUT_SECONDS = 120.0
JOB_TIMEOUT_SECONDS = 1800.0
WRITE_INTERVAL_SECONDS = 0.02
TRANSFER_POLL_SECONDS = 0.5
MAX_DRILL_SECONDS = 4 * 3600
# The modes of `backup_job restore --table` the scenarios recover with.
REPLACE, MERGE_MISSING = "--replace", "--merge-missing"


@dataclass
class Options:
    """What to run."""

    scenarios: tuple[str, ...] = SCENARIOS
    size_mb: int = 16
    time_scale: float = 60.0


@dataclass
class Outcome:
    """A finished drill."""

    results: list[ScenarioResult]
    world: dict[str, Any]
    throughput: dict[str, Any]


def _root() -> Path:
    from tools.offline import ROOT

    return ROOT


def _utc() -> datetime:
    return datetime.now(UTC)


def dump_began(backup: dict[str, Any]) -> datetime:
    """When a backup's dump began, from its manifest."""
    return datetime.fromisoformat(backup["startedAt"].replace("Z", "+00:00"))


@dataclass
class Drill:
    """One drill run: `run()` builds, breaks, recovers and measures; `teardown()` removes everything."""

    options: Options
    progress: Callable[[str], None]
    world: World = field(default_factory=World)
    throughput: dict[str, Any] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)

    # ------------------------------------------------------------------ setup

    def run(self) -> Outcome:
        """The whole drill."""
        started, started_at = time.monotonic(), _utc()
        self.setup()
        results = []
        for name in SCENARIOS:
            if name in self.options.scenarios:
                self.progress(f"scenario {name}")
                results.append(self.scenario(name))
                self.progress(f"{name}: {results[-1].explanation}")
        estimates = plans.estimates(self.plans, self.size_mb / 1024)
        for result in results:
            report.apply_model(result, estimates)
        declared = plans.objectives(self.plans.dr)
        self.throughput["assumedRestoreMbPerSecond"] = declared.get("restoreMbPerSecond")
        report.check_throughput(results, self.throughput, declared)
        for result in results:
            result.evidence["throughput"] = self.throughput
        world = {"databaseMb": self.size_mb, "durationSeconds": time.monotonic() - started,
                 "timeScale": self.options.time_scale, "startedAt": started_at.strftime("%Y-%m-%d %H:%M UTC"),
                 "commit": self._commit()}
        return Outcome(results, world, self.throughput)

    def _commit(self) -> str:
        result = run(["git", "-C", str(_root()), "rev-parse", "--short", "HEAD"], check=False, timeout=10)
        return result.stdout.strip() or "?"

    def setup(self) -> None:
        """Build the world from the plans and start the workload; take the first backups."""
        self.world.build()
        self.progress("namespaces rfdr-net, rfdr-us, rfdr-eu up")
        planners = PlanRun()
        self.closers.append(planners.kill)
        self.progress("planning prod, dr and the promoted dr (python -m tools.plan --json)")
        password = postgres.new_password()
        self.us = postgres.Cluster(self.world, "us", password)
        self.us.init_primary()
        self.database = DATABASE
        with self.us.connect() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        with self.us.connect(DATABASE) as connection:
            connection.execute(workload.SCHEMA)
        self.eu = postgres.Cluster(self.world, "eu", password)
        self.eu.clone_from(self.us)
        self.progress("us: PostgreSQL 15 primary; eu: streaming replica (pg_basebackup -R)")
        self.fill()
        self.plans = planners.finish()
        self.progress("plans ready")
        self.start_storage()
        self.start_dns()
        self.start_apps()
        self.transfer = TransferStandIn([j for j in plans.transfer_jobs(self.plans.dr)
                                         if j["source"] in self.us_buckets and j["sink"] in self.eu_buckets],
                                        self.world.folder / "transfer", TRANSFER_POLL_SECONDS,
                                        self.options.time_scale, MAX_DRILL_SECONDS)
        self.transfer.start()
        self.closers.append(self.transfer.stop)
        self.ledger = Ledger(run=secrets.token_hex(4))
        self.writer = Workload(self.hostname, self.ledger, WRITE_INTERVAL_SECONDS, self.options.time_scale,
                               MAX_DRILL_SECONDS)
        self.writer.start()
        self.closers.append(self.writer.stop)
        self.lag = LagSampler(self.us)
        self.lag.start()
        self.closers.append(self.lag.stop)
        if self.wait_write(time.monotonic() - 1) is None:
            raise DrillError(MISSED, f"no write reached the app through {self.hostname} after setup")
        self.progress(f"workload writing through http://{self.hostname}/ledger")
        self.backup = self.take_backup("us", self.plans.prod, self.us, "baseline")
        self.export_dns()

    def fill(self) -> None:
        """Load `size_mb` of data into the primary (streamed to the replica as it is written)."""
        target = self.options.size_mb * 1024 * 1024
        with self.us.connect(DATABASE) as connection:
            first = 1
            for _ in range(target // (workload.FILL_BATCH_ROWS * 512) + 10):  # a batch adds >= 2 MB
                size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
                assert size is not None  # one row
                if size[0] >= target:
                    break
                connection.execute(workload.FILL_ROW, (self.world.folder.name, first, first + workload.FILL_BATCH_ROWS - 1))
                first += workload.FILL_BATCH_ROWS
                if first % (workload.FILL_BATCH_ROWS * 25) == 1:
                    self.progress(f"loading data: {size[0] / 1048576:.0f} of {self.options.size_mb} MB")
            connection.execute("VACUUM ANALYZE")
        self.size_mb = self.database_mb
        self.progress(f"database {self.size_mb:.0f} MB")

    @property
    def database_mb(self) -> float:
        """The application database's size now."""
        with self.us.connect(DATABASE) as connection:
            row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return row[0] / 1048576

    def start_storage(self) -> None:
        """An emulator per site with the buckets its plan names."""
        self.us_buckets = [self.plans.prod["outputs"]["databaseDumpsBucket"], self.plans.prod["outputs"]["userFilesBucket"]]
        self.eu_buckets = [self.plans.dr["outputs"]["databaseDumpsReplicaBucket"],
                           self.plans.dr["outputs"]["userFilesReplicaBucket"]]
        storage.start(self.world, "us", self.us_buckets)
        storage.start(self.world, "eu", self.eu_buckets)
        self.progress(f"fake-gcs-server: us {', '.join(self.us_buckets)}; eu {', '.join(self.eu_buckets)}")

    def start_dns(self) -> None:
        """knotd with the dr plan's records (and the sites' origin records), behind the Cloudflare API stand-in."""
        records = plans.dns_records(self.plans.dr)
        if not records:
            raise DrillError(2, "the dr plan has no Cloudflare DNS records (failover.mode dns): nothing to drill")
        self.zone_id = records[0]["zoneId"]
        self.domain = min((r["name"] for r in records), key=len)
        targets = plans.failover_targets(self.plans.dr)
        origins = [{"name": name, "type": "A", "content": ADDRESSES[site], "ttl": dns.AUTO_TTL_SECONDS, "proxied": False}
                   for name, site in sorted(targets.items()) if name.endswith("." + self.domain)]
        self.planned = [{k: r[k] for k in ("name", "type", "content", "ttl", "proxied")} for r in records]
        self.token = secret(secrets.token_hex(20))
        self.knot = dns.KnotServer(self.world, self.domain)
        self.cloudflare = cloudflare.CloudflareStandIn(self.zone_id, self.domain, self.token, self.knot)
        self.cloudflare.load(self.planned + origins)
        self.cloudflare.start()
        self.closers.append(self.cloudflare.stop)
        # Clients use a DNS-only name: its TTL is what a failover waits for (proxied names switch at the edge).
        reachable = [r for r in records if r["type"] == "CNAME" and r["content"] in targets]
        chosen = next((r for r in reachable if not r["proxied"]), reachable[0] if reachable else None)
        if chosen is None:
            raise DrillError(2, "no planned record points at a failover target name in the zone")
        self.hostname = chosen["name"]
        self.progress(f"knotd serving {self.domain} ({len(records)} planned records) at {ADDRESSES['dns']}")

    def start_apps(self) -> None:
        """The Vercel stand-in of each site, each in front of its own database."""
        for site, cluster in (("us", self.us), ("eu", self.eu)):
            url_file = self.world.secret_file(f"{site}-app.url", cluster.url(self.database))
            self.world.spawn(site, f"app-{site}", [sys.executable, "-m", "tools.drill.app", "--site", site,
                                                   "--listen", ADDRESSES[site], "--port", str(APP_PORT),
                                                   "--database-url-file", str(url_file)], cwd=_root())

    def repoint_apps(self, database: str) -> None:
        """Point both apps at another database: new URL file, then SIGHUP (a redeploy with new env)."""
        self.database = database
        for site, cluster in (("us", self.us), ("eu", self.eu)):
            self.world.secret_file(f"{site}-app.url", cluster.url(database))
            self.signal_app(site, signal.SIGHUP)

    def signal_app(self, site: str, signum: signal.Signals) -> None:
        """Signal the site's app stand-in (SIGHUP redeploy, SIGUSR1/SIGUSR2 maintenance on/off)."""
        process = self.world.processes.get(f"app-{site}")
        if process is not None and process.poll() is None:
            process.send_signal(signum)  # `ip netns exec` execs the app in place: same pid

    # ------------------------------------------------------------------ the project's own jobs

    def job(self, site: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
        """`python -m backup_job ARGS` in the site, with the plan's environment; its JSON log line."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "STORAGE_EMULATOR", "CLOUDFLARE"))}
        environment.update(env, STORAGE_EMULATOR_HOST=storage.url(site), BACKUP_STORAGE_RETRY_SECONDS="10")
        result = run(in_namespace(site, [sys.executable, "-m", "backup_job", *args]), env=environment,
                     timeout=JOB_TIMEOUT_SECONDS, check=False, cwd=_root())
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        log = json.loads(lines[-1]) if lines else {"exitCode": result.returncode, "message": "no log line"}
        log["exitCode"] = result.returncode
        return log

    def job_env(self, plan: dict[str, Any], job: str, secret: tuple[str, str, str]) -> tuple[list[str], dict[str, str]]:
        """The plan's args and environment for `job`, with its secret file variable pointing at a drill file."""
        args, env = plans.job_environment(plan, job)
        variable, name, value = secret
        path = self.world.secret_file(name, value)
        env = {k: v for k, v in env.items() if not k.endswith("_FILE")}
        env[variable] = str(path)
        return args, env

    def take_backup(self, site: str, plan: dict[str, Any], cluster: postgres.Cluster, why: str) -> dict[str, Any]:
        """The plan's scheduled full backup job, run now; waits for its copy in the EU when taken in the US."""
        self.progress(f"{site}: backup_job {' '.join(plans.job_environment(plan, 'db-backup-full')[0])} ({why})")
        args, env = self.job_env(plan, "db-backup-full", ("DATABASE_URL_FILE", f"{site}-backup.url",
                                                          cluster.url(self.database)))
        size_mb = self.database_mb if site == "us" else None
        log = self.job(site, args, env)
        if log["exitCode"] != 0:
            raise DrillError(MISSED, f"the {site} backup failed (exit {log['exitCode']}): {log.get('message', '')}")
        log["bucket"], log["prefix"] = env["BACKUP_BUCKET"], env.get("BACKUP_PREFIX", "")
        manifest = in_site(site, lambda: layout.read_manifest(storage.client(site).bucket(log["bucket"]), log["object"]))
        log["startedAt"] = manifest["startedAt"]
        if size_mb is not None:
            self.throughput["dumpMbPerSecond"] = round(size_mb / max(float(log["durationSeconds"]), 0.001), 1)
            self.throughput["dumpMb"] = round(int(log["bytes"]) / 1048576, 1)
            copied = self.transfer.wait_for([log["object"], layout.manifest_object_name(log["object"])],
                                            RECOVERY_TIMEOUT_SECONDS + self.throughput["dumpMb"])
            if copied is None:
                raise DrillError(MISSED, "the transfer stand-in did not copy the backup to the EU in time")
            self.progress(f"backup {log['object']} ({self.throughput['dumpMb']} MB) copied to the EU in {copied:.1f} s")
        return log

    def export_dns(self) -> None:
        """The dr plan's export-dns job against the Cloudflare API stand-in."""
        args, env = self.job_env(self.plans.dr, "db-backup-dns-export",
                                 ("CLOUDFLARE_API_TOKEN_FILE", "cloudflare.token", self.token))
        env["CLOUDFLARE_API_BASE_URL"] = cloudflare.base_url()
        log = self.job("eu", args, env)
        if log["exitCode"] != 0:
            raise DrillError(MISSED, f"export-dns failed (exit {log['exitCode']}): {log.get('message', '')}")
        log["bucket"], log["prefix"] = env["BACKUP_BUCKET"], env.get("BACKUP_PREFIX", "")
        self.dns_export = log
        self.progress(f"eu: backup_job export-dns stored {log['object']} ({log['records']} records)")

    def restore(self, database: str, tables: list[str], mode: str | None = None) -> dict[str, Any]:
        """The dr plan's restore settings: `backup_job restore` from the EU replica bucket into `database` on the
        primary (run in the EU, where the dump is); `mode` is REPLACE, MERGE_MISSING or None (the job's default:
        a whole restore, or tables the target lacks)."""
        _, env = self.job_env(self.plans.dr, "db-backup-restore-check",
                              ("TARGET_DATABASE_URL_FILE", "restore-target.url", self.us.url(database)))
        args = ["restore", *[a for t in tables for a in ("--table", t)], *([mode] if mode else [])]
        return self.job("eu", args, env)

    # ------------------------------------------------------------------ measuring

    def wait_write(self, since: float, accept: Callable[[workload.Ack], bool] = lambda ack: True,
                   timeout: float = RECOVERY_TIMEOUT_SECONDS) -> float | None:
        """Seconds from `since` to the first write acknowledged after it that `accept`s, or None within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ack = self.ledger.first_ack_after(since, accept)
            if ack is not None:
                return ack.acked_at - since
            time.sleep(0.05)
        return None

    def verify(self, cluster: postgres.Cluster) -> workload.LedgerCheck:
        """The database's ledger against the workload's."""
        with cluster.connect(self.database) as connection:
            return check_ledger(connection, self.ledger)

    def explain_dump_losses(self, cluster: postgres.Cluster, damaged: str, incident: float, backup: dict[str, Any],
                            scenario: str, removed: Collection[int] | None = None) -> tuple[list[int], list[int], float]:
        """Acknowledged writes into the `damaged` database missing from `cluster`'s ledger after a restore:
        (explained, unexplained, RPO seconds). Explained: removed by the incident (`removed`, or any row when None:
        the whole table or database went) and acknowledged after the dump began. A dump holds every commit before
        its snapshot, which is taken after it began; a row's committed_at is when its INSERT ran, and a slow commit
        (an fsync under load) can become visible seconds later, so the acknowledgement - after the commit - is what
        is compared."""
        dump_started = dump_began(backup)
        # Acknowledged before the ledger is read, so committed before it: a write the app takes meanwhile is no loss.
        with self.ledger.lock:
            acked = [a for a in self.ledger.acks.values()
                     if a.database == damaged and a.seq not in self.ledger.explained_lost]
        present = self.present(cluster)
        lost = [a for a in acked if a.seq not in present]
        explained = sorted(a.seq for a in lost if a.acked_wall >= dump_started and (removed is None or a.seq in removed))
        unexplained = sorted({a.seq for a in lost} - set(explained))
        with self.ledger.lock:
            for seq in explained:
                self.ledger.explained_lost[seq] = f"{scenario}: acknowledged after the dump {backup['object']} began"
        first = min((a.committed_at for a in lost), default=None)
        incident_wall = _utc().timestamp() - (time.monotonic() - incident)
        return explained, unexplained, 0.0 if first is None else max(0.0, incident_wall - first.timestamp())

    def present(self, cluster: postgres.Cluster) -> set[int]:
        """Client sequence numbers in the database's ledger."""
        with cluster.connect(self.database) as connection:
            return {row[0] for row in connection.execute("SELECT client_seq FROM ledger")}

    # ------------------------------------------------------------------ scenarios

    def scenario(self, name: str) -> ScenarioResult:
        """Run one scenario; a failed recovery step is a failed scenario, not a crashed drill."""
        runner = {"dns-loss": self.dns_loss, "data-deletion": self.data_deletion, "table-drop": self.table_drop,
                  "database-corruption": self.database_corruption, "regional-outage": self.regional_outage}[name]
        try:
            return runner()
        except (DrillError, psycopg.Error, OSError) as exc:
            message = exc.args[-1] if isinstance(exc, DrillError) else f"{type(exc).__name__}: {str(exc)[:300]}"
            self.progress(f"{name} FAILED: {message}")
            return ScenarioResult(name, None, 0, 0.0, False, "the recovery did not complete", failure=str(message))

    def cloudflare_call(self, method: str, path: str, body: bytes | None = None) -> Any:
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

    def dns_loss(self) -> ScenarioResult:
        """Delete the zone's records; restore them from the latest export-dns zone file."""
        before = self.cloudflare.listing()
        incident = time.monotonic()
        for record in before:
            self.cloudflare_call("DELETE", f"/{record['id']}")
        gone = self.answers(self.planned)
        self.progress(f"dns-loss: {len(before)} records deleted through the API; "
                      f"{sum(not a['matches'] for a in gone)} of {len(gone)} planned names no longer answer")
        bucket, prefix = self.dns_export["bucket"], self.dns_export["prefix"]

        def latest_zone() -> tuple[str, bytes]:
            backup = layout.newest(storage.client("eu").bucket(bucket), prefix, "dns")
            data = storage.client("eu").bucket(bucket).blob(backup.object).download_as_bytes()
            if hashlib.sha256(data).hexdigest() != backup.manifest["sha256"]:
                raise DrillError(MISSED, f"{backup.object} does not match its manifest's sha256")
            return backup.object, data
        zone_object, zone = in_site("eu", latest_zone, timeout=60)
        self.cloudflare_call("POST", "/import", zone)
        dns_seconds = None
        deadline = time.monotonic() + RECOVERY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            after = self.answers(self.planned)
            if all(a["matches"] for a in after):
                dns_seconds = time.monotonic() - incident
                break
            time.sleep(0.05)
        restored = {(r["name"], r["type"], r["content"], r["ttl"], bool(r.get("proxied"))) for r in self.cloudflare.listing()}
        lost_records = [r for r in before if (r["name"], r["type"], r["content"], r["ttl"], bool(r.get("proxied")))
                        not in restored]
        check = self.verify(self.us)
        return ScenarioResult(
            "dns-loss", dns_seconds, 0, 0.0, check.ok and not lost_records and dns_seconds is not None,
            f"{len(before)} records deleted and restored from {zone_object} through the API; every planned name "
            f"answered correctly {dns_seconds if dns_seconds is None else round(dns_seconds, 2)} s after the deletion",
            {"zoneExport": zone_object, "recordsDeleted": len(before), "recordsLost": lost_records,
             "firstCorrectAnswerSeconds": dns_seconds, "answersAfter": self.answers(self.planned),
             "ledger": check.to_json()})

    def data_deletion(self) -> ScenarioResult:
        """The plan's scenario 4: rows deleted by mistake (a DELETE with a wrong WHERE) while the app keeps writing,
        merged back from the newest dump in the EU replica bucket with `restore --table public.ledger
        --merge-missing`; the app is never stopped. The RTO runs from the DELETE's commit to the merge's end: the
        app served throughout, so it is how long the deleted rows were missing, not an outage."""
        began = dump_began(self.backup)
        # The app must be serving when the mistake happens: every write failing from the DELETE on counts against
        # this scenario. A previous scenario can leave the client failing for a while after its own recovery was
        # measured - dns-loss ends when the drill's queries answer, but the client may still hold the negative
        # answer it got during the outage (0.2 s) - so wait for a write issued from now on to be acknowledged: the
        # client then has a working address, and whatever it asks later is answered by the restored zone.
        with self.ledger.lock:
            issued = self.ledger.issued
        if self.wait_write(-math.inf, lambda ack: ack.seq > issued) is None:
            raise DrillError(MISSED, "the app acknowledged no write before the mistaken DELETE")
        # The mistake must hit rows written after the dump began, or it would not show what a merge cannot bring back.
        if self.wait_write(-math.inf, lambda ack: ack.acked_wall > began and deletion.hit(ack.seq)) is None:
            raise DrillError(MISSED, "no write after the dump began that the mistaken DELETE would hit")
        with self.us.connect(self.database) as connection:
            deleted = deletion.mistaken_delete(connection)
        incident = time.monotonic()  # the DELETE has committed: the rows are gone from here
        self.progress(f"data-deletion: a mistaken delete ({deletion.PREDICATE}) removed {len(deleted)} ledger rows while "
                      f"the app writes; backup_job restore --table public.ledger {MERGE_MISSING}")
        log = self.restore(self.database, ["public.ledger"], MERGE_MISSING)
        merged = time.monotonic()
        if log["exitCode"] != 0:
            raise DrillError(MISSED, f"backup_job restore failed (exit {log['exitCode']}): {log.get('message', '')}")
        merge = merged_table(log, "public.ledger")
        again = self.restore(self.database, ["public.ledger"], MERGE_MISSING)
        again_restored = merged_table(again, "public.ledger")["restored"] if again["exitCode"] == 0 else None
        with self.us.connect(self.database) as connection:
            after = deletion.ledger_rows(connection)
        with self.ledger.lock:
            acks = {seq: a for seq, a in self.ledger.acks.items() if a.database == self.database}
            failed = [reason for moment, reason in self.ledger.failures if incident < moment <= merged]
        written = sum(incident < a.acked_at <= merged for a in acks.values())
        account = deletion.account(deleted, after, int(merge["inDump"]), acks)
        explained, unexplained, rpo = self.explain_dump_losses(self.us, self.database, incident, self.backup,
                                                               "data-deletion", removed=deleted)
        check = self.verify(self.us)
        before_dump = sum(seq in acks and acks[seq].acked_wall < began for seq in deleted)
        restored = int(merge["restored"])
        ok = (check.ok and account.ok and not unexplained and restored == len(account.dumped)
              and again_restored == 0 and written > 0 and not failed)
        rto = merged - incident
        return ScenarioResult(
            "data-deletion", rto, len(explained) + len(unexplained), rpo, ok,
            f"a mistaken delete ({deletion.PREDICATE}) removed {len(deleted)} rows ({before_dump} "
            f"written before the dump began); {MERGE_MISSING} from {log['object']} restored {restored} of the "
            f"{len(account.dumped)} the dump held, {rto:.1f} s after the DELETE, while the app acknowledged {written} "
            f"writes and failed {len(failed)}; {len(explained)} deleted rows written after the dump began are lost "
            f"(explained by the dump time), {len(unexplained)} unexplained; a second merge restored {again_restored}",
            {"predicate": deletion.PREDICATE, "deletedBeforeDumpBegan": before_dump,
             "deletedAfterDumpBegan": len(deleted) - before_dump,
             "merge": {**{k: log.get(k) for k in ("object", "bytes", "mode", "durationSeconds")},
                       **{k: merge.get(k) for k in ("restored", "skipped", "inDump")}, **account.to_json()},
             "rtoMeasuredAs": "the DELETE's commit to the end of the merge job (the app served throughout)",
             "writesDuringRecovery": {"acknowledged": written, "failed": len(failed), "reasons": sorted(set(failed))},
             "secondMerge": {"exitCode": again["exitCode"], "restored": again_restored,
                             "message": again.get("message", "")},
             "lostExplained": explained, "lostUnexplained": unexplained,
             "lostAckedAt": {str(seq): acks[seq].acked_wall.isoformat() for seq in explained + unexplained},
             "dumpStartedAt": self.backup["startedAt"], "ledger": check.to_json()})

    def table_drop(self) -> ScenarioResult:
        """Drop the ledger table on the primary; recreate it from the latest dump in the EU replica bucket with
        `restore --table public.ledger --replace`, the app in maintenance mode meanwhile."""
        incident = time.monotonic()
        with self.us.connect(self.database) as connection:
            connection.execute("DROP TABLE ledger")
        dropped_at = _utc()  # a write committed after this went into the restored table
        self.progress(f"table-drop: DROP TABLE ledger on the primary; backup_job restore --table public.ledger {REPLACE}")
        started = time.monotonic()
        # The app must not write while the table is recreated in the live database: its inserts would land in the
        # empty table the restore creates, and the restored rows and sequence would then collide with them.
        self.signal_app("us", signal.SIGUSR1)
        try:
            log = self.restore(self.database, ["public.ledger"], REPLACE)
        finally:
            self.signal_app("us", signal.SIGUSR2)
        if log["exitCode"] != 0:
            raise DrillError(MISSED, f"backup_job restore failed (exit {log['exitCode']}): {log.get('message', '')}")
        restore_seconds = time.monotonic() - started
        rto = self.wait_write(incident, lambda ack: ack.committed_at > dropped_at)
        explained, unexplained, rpo = self.explain_dump_losses(self.us, self.database, incident, self.backup,
                                                               "table-drop")
        refused = self.restore(self.database, ["public.ledger"])
        check = self.verify(self.us)
        ok = check.ok and not unexplained and refused["exitCode"] == 2
        return ScenarioResult(
            "table-drop", rto, len(explained) + len(unexplained), rpo, ok,
            f"ledger recreated from {log['object']} in {restore_seconds:.1f} s; {len(explained)} rows acknowledged "
            f"after the dump began are lost (explained by the dump time), {len(unexplained)} unexplained; a second "
            f"restore without {REPLACE} was refused (exit {refused['exitCode']})",
            {"restore": {k: log.get(k) for k in ("object", "bytes", "rows", "mode", "durationSeconds")},
             "lostExplained": explained, "lostUnexplained": unexplained,
             "dumpStartedAt": self.backup["startedAt"], "refusedWithoutReplace": {
                 "exitCode": refused["exitCode"], "message": refused.get("message", "")},
             "ledger": check.to_json()})

    def database_corruption(self) -> ScenarioResult:
        """Overwrite the primary's data files of the app database; restore the latest dump into a fresh database."""
        with self.us.connect(self.database) as connection:
            files = [row[0] for row in connection.execute(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
                "AND c.relkind IN ('r', 'i') AND pg_relation_filepath(c.oid) IS NOT NULL")]
            connection.execute("CHECKPOINT")
        for relative in files:
            for segment in [self.us.data / relative, *sorted(self.us.data.glob(relative + ".*"))]:
                overwrite(segment)
        incident = time.monotonic()  # the damage is done: the clock runs from here
        self.us.stop("fast")
        self.us.start()
        self.progress(f"database-corruption: {len(files)} data files of {self.database} overwritten, server restarted")
        fresh = f"{DATABASE}_restored_{int(time.time())}"
        with self.us.connect() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(fresh)))
        started = time.monotonic()
        log = self.restore(fresh, [])
        if log["exitCode"] != 0:
            raise DrillError(MISSED, f"backup_job restore failed (exit {log['exitCode']}): {log.get('message', '')}")
        restore_seconds = time.monotonic() - started
        damaged = self.database
        self.repoint_apps(fresh)
        rto = self.wait_write(incident, lambda ack: ack.database == fresh)
        with self.us.connect(fresh) as connection:
            size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        assert size is not None
        restored_mb = size[0] / 1048576
        self.throughput["restoreMbPerSecond"] = round(restored_mb / restore_seconds, 1)
        self.throughput["restoredMb"] = round(restored_mb, 1)
        explained, unexplained, rpo = self.explain_dump_losses(self.us, damaged, incident, self.backup,
                                                               "database-corruption")
        check = self.verify(self.us)
        return ScenarioResult(
            "database-corruption", rto, len(explained) + len(unexplained), rpo, check.ok and not unexplained,
            f"{log['object']} restored into {fresh} in {restore_seconds:.1f} s ({restored_mb:.0f} MB, "
            f"{self.throughput['restoreMbPerSecond']} MB/s) and the apps repointed; {len(explained)} rows acknowledged "
            f"after the dump began are lost (explained by the dump time), {len(unexplained)} unexplained",
            {"restore": {k: log.get(k) for k in ("object", "bytes", "rows", "durationSeconds")},
             "restoreSeconds": restore_seconds, "freshDatabase": fresh, "corruptedFiles": len(files),
             "lostExplained": explained, "lostUnexplained": unexplained, "ledger": check.to_json()})

    def regional_outage(self) -> ScenarioResult:
        """Cut the US while writes run; follow docs/runbooks/failover.md: promote the EU replica, switch DNS to the
        promoted plan, unpause the standby backups and take the first EU backup."""
        self.wait_streaming()
        self.throughput["replicaLagSeconds"] = round(self.lag.max_lag, 3)
        incident = time.monotonic()
        cut_wall = _utc()
        self.world.cut("us")
        self.world.kill_site("us")
        self.lag.stop()
        with self.eu.connect(self.database) as connection:
            row = connection.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
        assert row is not None
        replay = row[0]
        self.progress(f"regional-outage: us cut and stopped; eu replica replayed up to {replay}")
        if not self.plans.failover_diff.safe:
            raise DrillError(MISSED, "tools.failover's diff says the promotion is UNSAFE: the runbook stops here")
        self.eu.promote()
        changes = self.switch_dns()
        self.progress(f"eu promoted; {len(changes)} DNS records switched to the promoted plan through the API")
        rto = self.wait_write(incident, lambda ack: ack.site == "eu")
        # STAND-IN for Cloud Scheduler starting the Cloud Run job: once the promoted plan unpauses the standby's
        # full-backup schedule, the drill runs that job's backup_job command itself.
        if plans.schedule_paused(self.plans.promoted, "db-backup-full"):
            raise DrillError(MISSED, "the promoted plan leaves the standby full backup paused")
        first_backup = self.take_backup("eu", self.plans.promoted, self.eu, "first backup of the promoted standby")
        dns_after = self.answers(plans.dns_records(self.plans.promoted))
        # The US comes back for the post-mortem (still cut off): which of its commits never reached the EU?
        self.us.start()
        us_rows = self.ledger_rows(self.us)
        self.us.stop("fast")
        eu_rows = self.ledger_rows(self.eu)
        lost = sorted(set(us_rows) - set(eu_rows))
        with self.ledger.lock:
            acks = dict(self.ledger.acks)
            for seq in lost:
                self.ledger.explained_lost[seq] = "regional-outage: committed in the US after the replica's last replayed WAL"
        replay_at = lsn(replay)
        def wal(seq: int) -> dict[str, Any]:
            return {"seq": seq, "lsnBefore": acks[seq].lsn_before, "lsnAfter": acks[seq].lsn_after}
        lost_acked = [wal(seq) for seq in lost if seq in acks]
        kept_acked = [wal(seq) for seq in sorted(acks) if seq in eu_rows and acks[seq].site == "us"]
        # A write whose commit ended at or before the replayed position must have reached the EU.
        unexplained = [seq for seq in lost if seq in acks and lsn(acks[seq].lsn_after) <= replay_at]
        rpo = max(0.0, cut_wall.timestamp() - min(us_rows[s] for s in lost).timestamp()) if lost else 0.0
        check = self.verify(self.eu)
        return ScenarioResult(
            "regional-outage", rto, len(lost), rpo, check.ok and not unexplained,
            f"{len(lost)} rows committed in the US after the replica's last replayed WAL ({replay}) are lost "
            f"(asynchronous replication); the first write through {self.hostname} reached the EU "
            f"{rto if rto is None else round(rto, 2)} s after the cut; first EU backup {first_backup['object']}",
            {"replayLsn": replay, "lostSeqs": lost, "lostAcked": lost_acked,
             "keptAckedTail": kept_acked[-50:], "lostUnexplained": unexplained,
             "usRows": len(us_rows), "euRows": len(eu_rows), "dnsChanges": changes, "dnsAfterPromotion": dns_after,
             "firstEuBackup": first_backup["object"],
             "failoverDiff": [{"type": c.type, "name": c.name} for c in self.plans.failover_diff.changed], "ledger": check.to_json()})

    def wait_streaming(self, timeout: float = 60.0) -> None:
        """The replica streams from the primary (it reconnects within a second after a primary restart)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.us.connect() as connection:
                if connection.execute("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'").fetchone():
                    return
            time.sleep(0.1)
        raise DrillError(MISSED, f"the EU replica is not streaming from the US primary after {timeout:.0f} s")

    def ledger_rows(self, cluster: postgres.Cluster) -> dict[int, datetime]:
        """client_seq -> commit time of a cluster's ledger."""
        with cluster.connect(self.database) as connection:
            return dict(connection.execute("SELECT client_seq, committed_at FROM ledger").fetchall())

    def switch_dns(self) -> list[dict[str, Any]]:
        """STAND-IN for `pulumi up` of the promoted plan: PATCH each Cloudflare record whose content, TTL or proxied
        flag differs, through the API stand-in (the Pulumi CLI and provider are not available offline)."""
        current = {(r["name"], r["type"]): r for r in self.cloudflare.listing()}
        changes = []
        for record in plans.dns_records(self.plans.promoted):
            existing = current.get((record["name"], record["type"]))
            wanted = {"content": record["content"], "ttl": record["ttl"], "proxied": record["proxied"]}
            if existing is None:
                raise DrillError(MISSED, f"{record['name']} is not in the zone: a promotion only updates records")
            if any(existing.get(k) != v for k, v in wanted.items()):
                self.cloudflare_call("PATCH", f"/{existing['id']}", json.dumps(wanted).encode())
                changes.append({"name": record["name"], "from": existing["content"], "to": record["content"]})
        return changes

    # ------------------------------------------------------------------ teardown

    def keep_logs(self) -> Path:
        """Copy the world's logs (processes and PostgreSQL) out of the private folder before it goes."""
        target = Path(tempfile.mkdtemp(prefix="rfdr-logs-"))
        for log in [*self.world.folder.glob("logs/*.log"), *self.world.folder.glob("*/postgres/server.log")]:
            shutil.copy(log, target / (log.parent.parent.name + "-" + log.name if log.name == "server.log" else log.name))
        return target

    def teardown(self) -> None:
        """Stop everything the drill started and remove the world."""
        if os.environ.get("RFDR_DEBUG"):
            self.progress(f"logs kept in {self.keep_logs()}")
        for close in reversed(self.closers):
            began = time.monotonic()
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - teardown goes on whatever one part says
                pass
            if os.environ.get("RFDR_DEBUG"):
                self.progress(f"closed {getattr(close, '__qualname__', close)} in {time.monotonic() - began:.1f} s")
        self.world.teardown()


def merged_table(log: dict[str, Any], table: str) -> dict[str, Any]:
    """The entry of `table` in a merge's JSON line: `restored` (rows inserted), `skipped` and `inDump`."""
    for entry in log.get("restored") or []:
        if entry.get("table") == table:
            return entry
    raise DrillError(MISSED, f"backup_job restore --merge-missing reported no merge of {table}: {log.get('restored')}")


def overwrite(path: Path, chunk_bytes: int = 1 << 20) -> None:
    """Replace every byte of a data file with random bytes, in place (its size stays)."""
    remaining = path.stat().st_size
    with path.open("r+b") as handle:
        while remaining > 0:
            handle.write(os.urandom(min(chunk_bytes, remaining)))
            remaining -= chunk_bytes


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
