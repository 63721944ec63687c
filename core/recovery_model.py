"""Recovery objectives, computed: worst-case data loss and time to recover from what is provisioned.

Pure Python, no Pulumi types: the input is a list of resources as
`(type, props)` pairs - the recorded plan of one stack or of both, or the
resources a CrossGuard stack policy receives - so the offline readiness report
and the objectives policy use this same model.

What it reads:
- `raptorflow:recovery:RecoveryObjectives`: the declared objectives per
  scenario and capabilities (Supabase PITR, a cross-region database replica)
  plus the figures estimates use (database size, restore throughput, minutes
  to decide and to apply a change);
- Cloud Scheduler jobs that start backup Cloud Run jobs (cron, paused): a job's `job-command` and
  `backup-kind` labels say what it runs, its scheduler's target says which schedule starts it
  (core.contracts names both);
- Storage Transfer jobs into replica buckets (daily sync, event-driven);
- Cloudflare records (TTL, proxied) or load-balancer monitors (interval, retries);
- Vercel project env vars: the failover flips them, and only a redeploy of the
  production deployment makes the app use them.

Every number carries how it was derived; `None` minutes means unbounded (for
example no copy in another region at all).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core import limits
from core.contracts import DATABASE_DUMPS, USER_FILES, BackupKind, Command, Label, ResourceType, started_job
from core.paths import lookup
from core.schedule import max_interval_hours

RECOVERY = ResourceType.RECOVERY_OBJECTIVES  # the name tools/drill imports

SCENARIOS = ("databaseCorruption", "regionalOutage", "securityBreach", "dataDeletion")
TITLES = {
    "databaseCorruption": "database corruption",
    "regionalOutage": "regional outage",
    "securityBreach": "security breach",
    "dataDeletion": "data deletion",
}


@dataclass(frozen=True)
class Estimate:
    """A duration in minutes (None: unbounded) and how it was derived."""

    minutes: float | None
    derivation: str

    def worse(self, other: Estimate) -> Estimate:
        """The larger of two estimates (unbounded beats everything)."""
        if self.minutes is None:
            return self
        if other.minutes is None or other.minutes > self.minutes:
            return other
        return self


@dataclass
class Assessment:
    """One scenario: targets, computed worst cases, verdict and what binds."""

    scenario: str
    target_rto_minutes: int
    target_rpo_minutes: int | None
    rto: Estimate
    rpo: Estimate | None
    parts: list[str] = field(default_factory=list)

    @property
    def rpo_met(self) -> bool:
        """Whether the worst-case recovery point meets the target (True when there is no target)."""
        if self.target_rpo_minutes is None or self.rpo is None:
            return True
        return self.rpo.minutes is not None and self.rpo.minutes <= self.target_rpo_minutes

    @property
    def rto_met(self) -> bool:
        """Whether the estimated time to recover meets the target."""
        return self.rto.minutes is not None and self.rto.minutes <= self.target_rto_minutes

    @property
    def met(self) -> bool:
        """Both objectives met."""
        return self.rpo_met and self.rto_met

    @property
    def binding(self) -> str:
        """The constraint that decides the verdict."""
        if not self.rpo_met:
            assert self.rpo is not None  # an assessment without an RPO estimate always meets its RPO
            return f"RPO: {self.rpo.derivation}"
        if not self.rto_met:
            return f"RTO: {self.rto.derivation}"
        return f"RPO: {self.rpo.derivation}" if self.rpo is not None else f"RTO: {self.rto.derivation}"

    def to_json(self) -> dict[str, Any]:
        """The assessment as JSON."""
        return {
            "scenario": self.scenario,
            "targetRtoMinutes": self.target_rto_minutes,
            "targetRpoMinutes": self.target_rpo_minutes,
            "rtoMinutes": self.rto.minutes,
            "rtoDerivation": self.rto.derivation,
            "rpoMinutes": None if self.rpo is None else self.rpo.minutes,
            "rpoDerivation": None if self.rpo is None else self.rpo.derivation,
            "met": self.met,
            "binding": self.binding,
        }


def _hours(minutes: float) -> str:
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"


@dataclass
class _Facts:
    declarations: list[Mapping[str, Any]] = field(default_factory=list)
    full_backups: list[tuple[str, float, bool]] = field(default_factory=list)  # cron, minutes, paused
    daily_copies: dict[str, float] = field(default_factory=dict)  # backup role -> interval minutes
    live_copies: set[str] = field(default_factory=set)  # backup roles with event-driven replication
    dns_ttls: list[tuple[int, bool]] = field(default_factory=list)  # ttl, proxied
    lb_monitors: list[tuple[float, int]] = field(default_factory=list)  # interval seconds, retries
    vercel_variables: int = 0  # env vars of the app that the failover flips

    def declared(self, path: str, default: Any = None) -> Any:
        for declaration in self.declarations:
            value = lookup(declaration, path)
            if value not in (None, False):
                return value
        return lookup(self.declarations[0], path, default) if self.declarations else default

    @property
    def sites(self) -> set[str | None]:
        return {d.get("site") for d in self.declarations}


def _facts(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> _Facts:
    facts = _Facts()
    resources = list(resources)
    buckets = {props.get("name"): props for kind, props in resources if kind == ResourceType.BUCKET}
    jobs = {props.get("name"): props for kind, props in resources if kind == ResourceType.RUN_JOB}
    for kind, props in resources:
        if kind == ResourceType.RECOVERY_OBJECTIVES:
            facts.declarations.append(props)
        elif kind == ResourceType.SCHEDULER_JOB:
            job = jobs.get(started_job(lookup(props, "httpTarget.uri")))
            runs = (job or {}).get("labels") or {}
            if runs.get(Label.JOB_COMMAND) == Command.BACKUP and runs.get(Label.BACKUP_KIND) == BackupKind.FULL:
                cron = props.get("schedule", "")
                try:
                    minutes = max_interval_hours(cron) * 60
                except (ValueError, IndexError):  # a schedule this model cannot read bounds nothing
                    minutes = float("inf")
                facts.full_backups.append((cron, minutes, bool(props.get("paused"))))
        elif kind == ResourceType.TRANSFER_JOB:
            spec = props.get("transferSpec") or props.get("replicationSpec") or {}
            sink = buckets.get(lookup(spec, "gcsDataSink.bucketName"), {})
            role = (sink.get("labels") or {}).get(Label.BACKUP_ROLE, "unknown")
            if "replicationSpec" in props:
                facts.live_copies.add(role)
            else:
                interval = str(lookup(props, "schedule.repeatInterval", "86400s")).rstrip("s")
                facts.daily_copies[role] = float(interval) / 60
        elif kind == ResourceType.DNS_RECORD:
            facts.dns_ttls.append((int(props.get("ttl") or 1), bool(props.get("proxied"))))
        elif kind == ResourceType.LOAD_BALANCER_MONITOR:
            facts.lb_monitors.append((float(props.get("interval") or 60), int(props.get("retries") or 0)))
        elif kind == ResourceType.VERCEL_VARIABLE:
            facts.vercel_variables += 1
    return facts


def _dump_interval(facts: _Facts) -> Estimate:
    active = [b for b in facts.full_backups if not b[2]] or facts.full_backups
    if not active:
        return Estimate(None, "no scheduled full backup")
    cron, minutes, paused = min(active, key=lambda b: b[1])
    if minutes == float("inf"):
        return Estimate(None, f"a full dump schedule that cannot be read ({cron})")
    note = " (the standby's paused schedule, as on the primary)" if paused else ""
    return Estimate(minutes, f"full dump every {_hours(minutes)} ({cron}){note}")


def _copy_delay(facts: _Facts, role: str) -> Estimate:
    lag = float(facts.declared("eventDrivenLagMinutes", limits.EVENT_DRIVEN_LAG_MINUTES))
    if role in facts.live_copies:
        return Estimate(lag, f"event-driven replication of {role} (lag {_hours(lag)})")
    if role in facts.daily_copies:
        minutes = facts.daily_copies[role]
        return Estimate(minutes, f"{role} copied every {_hours(minutes)}; add event-driven replication")
    return Estimate(None, f"no copy of {role} in another region")


def _database_point(facts: _Facts) -> Estimate:
    if facts.declared("pitr.enabled"):
        minutes = float(facts.declared("pitr.rpoMinutes", limits.PITR_RPO_MINUTES))
        days = facts.declared("pitr.windowDays", limits.PITR_WINDOW_DAYS)
        return Estimate(minutes, f"database: Supabase PITR (declared, {float(days):g}-day window, {_hours(minutes)})")
    dump = _dump_interval(facts)
    hint = "; add an hourly schedule or declare PITR" if dump.minutes is None or dump.minutes > 60 else ""
    return Estimate(dump.minutes, f"database: {dump.derivation}{hint}")


def _traffic_switch(facts: _Facts) -> Estimate:
    if facts.lb_monitors:
        worst = max(interval * (retries + 1) for interval, retries in facts.lb_monitors) / 60
        return Estimate(worst, f"load balancer fails over after {_hours(worst)} of failed health checks")
    apply = float(facts.declared("applyMinutes", limits.APPLY_MINUTES))
    ttl = max((ttl for ttl, proxied in facts.dns_ttls if not proxied), default=0) / 60
    return Estimate(apply + ttl, f"pulumi up {_hours(apply)} + DNS TTL {_hours(ttl)} (proxied names switch at once)")


def _app_environment(facts: _Facts) -> Estimate | None:
    """The app's flipped env vars in use: `pulumi up` changes them, then the production deployment is redeployed."""
    if not facts.vercel_variables:
        return None
    apply = float(facts.declared("applyMinutes", limits.APPLY_MINUTES))
    redeploy = float(limits.VERCEL_REDEPLOY_MINUTES)
    return Estimate(apply + redeploy, f"pulumi up {_hours(apply)} + Vercel redeploy {_hours(redeploy)}")


def _restore(facts: _Facts) -> Estimate:
    size = float(facts.declared("databaseSizeGb", limits.DATABASE_SIZE_GB))
    rate = float(facts.declared("restoreMbPerSecond", limits.RESTORE_MB_PER_SECOND))
    if rate <= 0:  # a restore that never ends: no bound
        return Estimate(None, f"restore {size:g} GB at {rate:g} MB/s never finishes")
    minutes = size * 1024 / rate / 60
    return Estimate(minutes, f"restore {size:g} GB at {rate:g} MB/s = {_hours(minutes)}")


def assess(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Assessment]:
    """The scenarios the given resources allow to assess, with worst-case RPO and estimated RTO.

    A primary stack alone assesses what its data decides (corruption, deletion, breach); a standby stack
    alone what its copies and traffic switch decide (regional outage, deletion of user files); both together
    assess everything.
    """
    facts = _facts(resources)
    if not facts.declarations:
        return []
    objectives = facts.declarations[0].get("objectives") or {}
    decide = float(facts.declared("decisionMinutes", limits.DECISION_MINUTES))
    has_primary, has_standby = "primary" in facts.sites, "standby" in facts.sites
    results = []

    def add(scenario: str, rto: Estimate, rpo: Estimate | None) -> None:
        target = objectives.get(scenario) or {}
        rto_target = target.get("rtoMinutes")
        if rto_target is None:
            raise ValueError(f"the recovery objectives declare no rtoMinutes for {scenario}")
        results.append(Assessment(scenario, int(rto_target), target.get("rpoMinutes"),
                                  Estimate(decide + rto.minutes if rto.minutes is not None else None,
                                           f"decide {_hours(decide)} + {rto.derivation}"), rpo))

    if has_primary:
        add("databaseCorruption", _restore(facts), _database_point(facts))
        add("securityBreach", Estimate(float(facts.declared("applyMinutes", limits.APPLY_MINUTES)),
                                       "rotate secrets and redeploy with pulumi up"), None)
    if has_standby:
        if facts.declared("databaseReplica.enabled"):
            lag = float(facts.declared("databaseReplica.maxLagMinutes", limits.DATABASE_REPLICA_LAG_MINUTES))
            database = Estimate(lag, f"database: cross-region replica (declared, lag {_hours(lag)})")
            promote = float(facts.declared("databaseReplica.promoteMinutes", limits.DATABASE_REPLICA_PROMOTE_MINUTES))
            database_rto = Estimate(promote, f"promote the replica {_hours(promote)}")
        else:
            dump, copy = _dump_interval(facts), _copy_delay(facts, DATABASE_DUMPS.label)
            total = None if dump.minutes is None or copy.minutes is None else dump.minutes + copy.minutes
            database = Estimate(total, f"database: {dump.derivation} + {copy.derivation}; or declare a replica")
            database_rto = _restore(facts)
        files = _copy_delay(facts, USER_FILES.label)
        switch, app = _traffic_switch(facts), _app_environment(facts)
        slowest = switch.worse(database_rto)
        parts = [f"traffic ({switch.derivation})"]
        if app is not None:
            slowest = slowest.worse(app)
            parts.append(f"app env ({app.derivation})")
        add("regionalOutage", Estimate(slowest.minutes, f"slowest of {', '.join(parts)} and "
                                                        f"database ({database_rto.derivation})"),
            database.worse(Estimate(files.minutes, f"user files: {files.derivation}")))
    deletion_parts = []
    if has_primary:
        deletion_parts.append(_database_point(facts))
    if has_standby:
        files = _copy_delay(facts, USER_FILES.label)
        deletion_parts.append(Estimate(files.minutes, f"user files: {files.derivation}"))
    if deletion_parts:
        worst = deletion_parts[0]
        for part in deletion_parts[1:]:
            worst = worst.worse(part)
        add("dataDeletion", _restore(facts), worst)
    order = {name: index for index, name in enumerate(SCENARIOS)}
    return sorted(results, key=lambda a: order[a.scenario])
