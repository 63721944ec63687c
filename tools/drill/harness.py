"""What every scenario works with: the Drill, which builds the two-site world from the plans (build.py), runs
the project's own jobs in it, measures recoveries against the workload's ledger, and tears it all down.

A scenario (a module of tools/drill/scenarios/) is a Scenario: a `run(drill)` that breaks the world and
recovers it, and the Yardstick the recovery model measures it against.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from backup_job import storage as layout
from core.contracts import LogField
from core.recovery_model import RESTORE
from tools.drill import build, filing, pitr, plans, postgres, promotion, report, vercel, workload
from tools.drill.jobs import Jobs
from tools.drill.monitor import Monitor, fault_duration_factor
from tools.drill.plans import PlanRun
from tools.drill.report import ScenarioResult, Step, Yardstick
from tools.drill.transfer import TransferStandIn
from tools.drill.workload import Ledger, Workload, check_ledger
from tools.drill.world import MISSED, DrillError, World, in_site

DATABASE = "raptorflow"
RECOVERY_TIMEOUT_SECONDS = 120.0
WRITE_INTERVAL_SECONDS = 0.02
TRANSFER_POLL_SECONDS = 0.5
# The modes of `backup_job restore --table` the scenarios recover with.
REPLACE, MERGE_MISSING = "--replace", "--merge-missing"


@dataclass(frozen=True)
class Scenario:
    """One scenario: its name, how it breaks and recovers the world, and what the model measures it against."""

    name: str
    run: Callable[[Drill], ScenarioResult]
    yardstick: Yardstick


@dataclass
class Options:
    """What to run: the chosen scenarios, in the order they run."""

    scenarios: tuple[Scenario, ...]
    size_mb: int = 16
    time_scale: float = 60.0


@dataclass
class Outcome:
    """A finished drill."""

    results: list[ScenarioResult]
    world: dict[str, Any]
    throughput: dict[str, Any]


def utc() -> datetime:
    """Now, in UTC."""
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

    def __post_init__(self) -> None:
        self.jobs = Jobs(self.world, self.progress)

    # ------------------------------------------------------------------ the run

    def run(self) -> Outcome:
        """The whole drill."""
        started, started_at, commit = time.monotonic(), utc(), filing.provenance(build.project_root())
        self.setup()
        results = []
        for scenario in self.options.scenarios:
            self.progress(f"scenario {scenario.name}")
            results.append(self.scenario(scenario))
            self.progress(f"{scenario.name}: {results[-1].explanation}")
        yardsticks = {scenario.name: scenario.yardstick for scenario in self.options.scenarios}
        estimates = plans.estimates(self.plans, self.size_mb / 1024)
        for result in results:
            report.apply_model(result, yardsticks[result.scenario], estimates)
        declared = plans.objectives(self.plans.dr)
        self.throughput["assumedRestoreMbPerSecond"] = declared.get("restoreMbPerSecond")
        report.check_throughput(results, yardsticks, self.throughput, declared)
        for result in results:
            result.evidence["throughput"] = self.throughput
        world = {"databaseMb": self.size_mb, "durationSeconds": time.monotonic() - started,
                 "timeScale": self.options.time_scale, "startedAt": started_at.strftime("%Y-%m-%d %H:%M UTC"),
                 **commit}
        return Outcome(results, world, self.throughput)

    def scenario(self, scenario: Scenario) -> ScenarioResult:
        """Run one scenario; a failed recovery step is a failed scenario, not a crashed drill."""
        try:
            return scenario.run(self)
        except (DrillError, psycopg.Error, OSError) as exc:
            message = exc.args[-1] if isinstance(exc, DrillError) else f"{type(exc).__name__}: {str(exc)[:300]}"
            self.progress(f"{scenario.name} FAILED: {message}")
            return ScenarioResult(scenario.name, None, 0, 0.0, False, "the recovery did not complete",
                                  failure=str(message))

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
        build.fill(self.us, DATABASE, self.options.size_mb, self.world.folder.name, self.progress)
        self.size_mb = self.database_mb
        self.progress(f"database {self.size_mb:.0f} MB")
        self.plans = planners.finish()
        self.progress("plans ready")
        self.checkpointing = promotion.prepare(self.world, self.plans.dr)
        self.closers.append(self.checkpointing.kill)
        self.us_buckets, self.eu_buckets = build.start_storage(self.world, self.plans, self.progress)
        self.supabase = pitr.start_in_drill(self)
        self.zone = build.start_zone(self.world, self.plans.dr, self.progress, self.closers)
        self.vercel, self.tls = build.start_vercel(self.world, self.plans.dr, self.us, self.database, self.closers)
        self.progress(f"Vercel stand-in: deployment {self.vercel.production.id if self.vercel.production else '?'} "
                      "served by both app stand-ins (HTTP, and HTTPS for the zone's names)")
        self.monitor = Monitor(self.plans.dr, self.options.time_scale,
                               duration_factor=fault_duration_factor()).start()
        self.closers.append(self.monitor.stop)
        self.progress(f"monitor stand-in: {len(self.monitor.checks)} uptime checks, {len(self.monitor.policies)} "
                      "alert policies of the dr plan")
        self.transfer = TransferStandIn([j for j in plans.transfer_jobs(self.plans.dr)
                                         if j["source"] in self.us_buckets and j["sink"] in self.eu_buckets],
                                        self.world.folder / "transfer", TRANSFER_POLL_SECONDS,
                                        self.options.time_scale, build.MAX_DRILL_SECONDS)
        self.transfer.start()
        self.closers.append(self.transfer.stop)
        self.ledger = Ledger(run=secrets.token_hex(4))
        self.writer = Workload(self.zone.hostname, self.ledger, WRITE_INTERVAL_SECONDS, self.options.time_scale,
                               build.MAX_DRILL_SECONDS)
        self.writer.start()
        self.closers.append(self.writer.stop)
        self.lag = build.LagSampler(self.us)
        self.lag.start()
        self.closers.append(self.lag.stop)
        if self.wait_write(time.monotonic() - 1) is None:
            raise DrillError(MISSED, f"no write reached the app through {self.zone.hostname} after setup")
        self.progress(f"workload writing through http://{self.zone.hostname}/ledger")
        self.backup = self.take_backup("us", self.plans.prod, self.us, "baseline")
        self.dns_export = self.jobs.export_dns(self.plans.dr, self.zone.token)

    @property
    def database_mb(self) -> float:
        """The application database's size now."""
        with self.us.connect(DATABASE) as connection:
            row = connection.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return row[0] / 1048576

    # ------------------------------------------------------------------ the apps

    def repoint_apps(self, database: str) -> None:
        """Point the apps at another database of the primary: the Vercel variable changed, then a redeploy."""
        self.database = database
        self.vercel.set_value(vercel.URL_VARIABLE, build.database_url(self.us, database))
        self.vercel.deploy()

    def app_health(self, site: str) -> dict[str, Any]:
        """The site's app stand-in's /health answer (status, deployment served, error), asked over its address."""
        return in_site("net", build.probe, site, "/health", timeout=30)

    def signal_app(self, site: str, signum: signal.Signals) -> None:
        """Signal the site's app stand-in (SIGUSR1/SIGUSR2 maintenance on/off)."""
        process = self.world.processes.get(f"app-{site}")
        if process is not None and process.poll() is None:
            process.send_signal(signum)  # `ip netns exec` execs the app in place: same pid

    # ------------------------------------------------------------------ the project's own jobs

    def take_backup(self, site: str, plan: dict[str, Any], cluster: postgres.Cluster, why: str) -> dict[str, Any]:
        """The plan's scheduled full backup job, run now; waits for its copy in the EU when taken in the US."""
        size_mb = self.database_mb if site == "us" else None
        log = self.jobs.backup(site, plan, cluster.url(self.database), why)
        if size_mb is not None:
            self.throughput["dumpMbPerSecond"] = round(size_mb / max(float(log[LogField.DURATION_SECONDS]), 0.001), 1)
            self.throughput["dumpMb"] = round(int(log["bytes"]) / 1048576, 1)
            copied = self.transfer.wait_for([log["object"], layout.manifest_object_name(log["object"])],
                                            RECOVERY_TIMEOUT_SECONDS + self.throughput["dumpMb"])
            if copied is None:
                raise DrillError(MISSED, "the transfer stand-in did not copy the backup to the EU in time")
            self.progress(f"backup {log['object']} ({self.throughput['dumpMb']} MB) copied to the EU in {copied:.1f} s")
        return log

    def restore_step(self, seconds: float, what: str) -> Step:
        """The restore term's step; below MIN_THROUGHPUT_CHECK_MB it is mostly pg_restore's start-up: shown, not
        held to the model's size / throughput."""
        small = self.size_mb < report.MIN_THROUGHPUT_CHECK_MB
        return Step(RESTORE, what, seconds, seconds, not_compared=(
            f"a {self.size_mb:.0f} MB database restores in pg_restore's start-up time; held to the model from "
            f"{report.MIN_THROUGHPUT_CHECK_MB:.0f} MB") if small else None)

    def restore(self, database: str, tables: list[str], mode: str | None = None) -> dict[str, Any]:
        """`backup_job restore` with the dr plan's settings into `database` on the primary; `mode` is REPLACE,
        MERGE_MISSING or None (the job's default: a whole restore, or tables the target lacks)."""
        return self.jobs.restore(self.plans.dr, self.us.url(database), tables, mode)

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
        present = set(self.ledger_rows(cluster))
        lost = [a for a in acked if a.seq not in present]
        explained = sorted(a.seq for a in lost if a.acked_wall >= dump_started and (removed is None or a.seq in removed))
        unexplained = sorted({a.seq for a in lost} - set(explained))
        with self.ledger.lock:
            for seq in explained:
                self.ledger.explained_lost[seq] = f"{scenario}: acknowledged after the dump {backup['object']} began"
        first = min((a.committed_at for a in lost), default=None)
        incident_wall = utc().timestamp() - (time.monotonic() - incident)
        return explained, unexplained, 0.0 if first is None else max(0.0, incident_wall - first.timestamp())

    def ledger_rows(self, cluster: postgres.Cluster) -> dict[int, datetime]:
        """client_seq -> commit time of a cluster's ledger."""
        with cluster.connect(self.database) as connection:
            return dict(connection.execute("SELECT client_seq, committed_at FROM ledger").fetchall())

    def wait_streaming(self, timeout: float = 60.0) -> None:
        """The replica streams from the primary (it reconnects within a second after a primary restart)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.us.connect() as connection:
                if connection.execute("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'").fetchone():
                    return
            time.sleep(0.1)
        raise DrillError(MISSED, f"the EU replica is not streaming from the US primary after {timeout:.0f} s")

    # ------------------------------------------------------------------ teardown

    def teardown(self) -> None:
        """Stop everything the drill started and remove the world."""
        if os.environ.get("RFDR_DEBUG"):
            self.progress(f"logs kept in {self.world.keep_logs()}")
        for close in reversed(self.closers):
            began = time.monotonic()
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - teardown goes on whatever one part says
                pass
            if os.environ.get("RFDR_DEBUG"):
                self.progress(f"closed {getattr(close, '__qualname__', close)} in {time.monotonic() - began:.1f} s")
        self.world.teardown()
