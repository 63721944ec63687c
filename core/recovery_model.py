"""Recovery objectives, computed: worst-case data loss and time to recover from what is provisioned.

Pure Python, no Pulumi types: the input is a list of resources as
`(type, props)` pairs - the recorded plan of one stack or of both, or the
resources a CrossGuard stack policy receives - so the offline readiness report
and the objectives policy use this same model.

What it reads (core/recovery_facts.py):
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
  production deployment makes the app use them;
- uptime checks (period, regions) and their P0 uptime alerts (condition, duration): the page that starts a
  regional outage's recovery.

The time to recover is a list of terms, in the order operators live them (TERMS names them; each scenario has
the terms that apply to it), and the RTO estimate is composed from them: every term in sequence, except
`propagate` and `redeploy`, which both start when the apply ends and run side by side:

    RTO = detect + decide + restore + apply + max(propagate, redeploy)

- regional outage: detect (the first P0 uptime alert fires), decide, restore (promote the replica, or restore
  the dump without one), apply (`pulumi up` through `tools.failover promote`), then propagate (the longest
  DNS-only TTL, or the load balancer's failed health checks) and redeploy (Vercel, when the stack flips Vercel
  variables);
- database corruption and data deletion: decide + restore;
- security breach: decide + apply (rotate the secrets, then `pulumi up`) + redeploy (the apps take the new
  credentials from a new Vercel deployment, as after a failover);
- failback (after a regional outage, with a database replica): restore (rebuild the old primary as a replica of the
  promoted one, at the restore throughput) + apply (`tools.failover demote`) + max(propagate, redeploy); planned, so
  no detect and no decide, and nothing is lost (RPO 0).

Every number carries how it was derived; `None` minutes means unbounded (for
example no copy in another region at all, or no P0 uptime alert to page anyone).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core import limits
from core.contracts import DATABASE_DUMPS, USER_FILES, ResourceType
from core.recovery_estimates import (
    APPLY,
    DECIDE,
    DETECT,
    PROPAGATE,
    REDEPLOY,
    RESTORE,
    Assessment,
    Estimate,
    Term,
    _hours,
    compose,
)
from core.recovery_facts import Facts, facts

RECOVERY = ResourceType.RECOVERY_OBJECTIVES  # the name tools/drill imports

SCENARIOS = ("databaseCorruption", "regionalOutage", "failback", "securityBreach", "dataDeletion")
TITLES = {
    "databaseCorruption": "database corruption",
    "regionalOutage": "regional outage",
    "failback": "failback",
    "securityBreach": "security breach",
    "dataDeletion": "data deletion",
}
FAILBACK_OF = "regionalOutage"
"""Failback is the regional outage's way back, not a scenario of the plan: it borrows that scenario's RTO objective,
and its RPO objective is nothing lost (a planned switchover pauses writes until the other site has them all)."""


def _dump_interval(facts: Facts) -> Estimate:
    active = [b for b in facts.full_backups if not b[2]] or facts.full_backups
    if not active:
        return Estimate(None, "no scheduled full backup")
    cron, minutes, paused = min(active, key=lambda b: b[1])
    if minutes == float("inf"):
        return Estimate(None, f"a full dump schedule that cannot be read ({cron})")
    note = " (the standby's paused schedule, as on the primary)" if paused else ""
    return Estimate(minutes, f"full dump every {_hours(minutes)} ({cron}){note}")


def _copy_delay(facts: Facts, role: str) -> Estimate:
    lag = float(facts.declared("eventDrivenLagMinutes", limits.EVENT_DRIVEN_LAG_MINUTES))
    if role in facts.live_copies:
        return Estimate(lag, f"event-driven replication of {role} (lag {_hours(lag)})")
    if role in facts.daily_copies:
        minutes = facts.daily_copies[role]
        return Estimate(minutes, f"{role} copied every {_hours(minutes)}; add event-driven replication")
    return Estimate(None, f"no copy of {role} in another region")


def _database_point(facts: Facts) -> Estimate:
    if facts.declared("pitr.enabled"):
        minutes = float(facts.declared("pitr.rpoMinutes", limits.PITR_RPO_MINUTES))
        days = facts.declared("pitr.windowDays", limits.PITR_WINDOW_DAYS)
        return Estimate(minutes, f"database: Supabase PITR (declared, {float(days):g}-day window, {_hours(minutes)})")
    dump = _dump_interval(facts)
    hint = "; add an hourly schedule or declare PITR" if dump.minutes is None or dump.minutes > 60 else ""
    return Estimate(dump.minutes, f"database: {dump.derivation}{hint}")


def _detect(facts: Facts) -> Term:
    """The first P0 uptime alert to page: its check's period + its timeout + the condition's duration (each region
    probes once per period, and a probe of a dead site fails at its timeout; see recovery_facts.UptimeAlert)."""
    timed = [(alert.seconds, alert) for alert in facts.uptime_alerts if alert.seconds is not None]
    if not timed:
        why = ("every P0 uptime alert needs more failing regions than its check probes from" if facts.uptime_alerts
               else "no P0 uptime alert on an uptime check")
        return Term(DETECT, None, f"{why}: nobody is paged; add the site's uptime checks and alerts")
    seconds, alert = min(timed, key=lambda pair: pair[0])
    return Term(DETECT, seconds / 60, f"P0 uptime alert ({alert.target}, {alert.failing_regions} of {alert.regions} regions "
                                        f"failing): check period {alert.period_seconds:g} s + timeout "
                                        f"{alert.timeout_seconds:g} s + duration {alert.duration_seconds:g} s = "
                                        f"{_hours(seconds / 60)}")


def _propagate(facts: Facts) -> Term:
    if facts.lb_monitors:
        worst = max(interval * (retries + 1) for interval, retries in facts.lb_monitors)
        return Term(PROPAGATE, worst / 60, f"load balancer fails over after {worst:g} s of failed health checks "
                                             "(interval x (retries + 1))")
    ttl = max((ttl for ttl, proxied in facts.dns_ttls if not proxied), default=0)
    return Term(PROPAGATE, ttl / 60, f"longest DNS-only TTL {ttl} s (proxied names switch at once)")


def _redeploy(facts: Facts) -> Term | None:
    """Vercel applies flipped env vars only to a new deployment: the production deployment is redeployed."""
    if not facts.vercel_variables:
        return None
    return Term(REDEPLOY, float(limits.VERCEL_REDEPLOY_MINUTES),
                f"Vercel redeploy {_hours(limits.VERCEL_REDEPLOY_MINUTES)}")


def _restore_term(facts: Facts) -> Term:
    estimate = _restore(facts)
    return Term(RESTORE, estimate.minutes, estimate.derivation)


def _restore(facts: Facts) -> Estimate:
    size = float(facts.declared("databaseSizeGb", limits.DATABASE_SIZE_GB))
    # The slowest the stacks declare: both hold the same database, and the order they are read in must not matter.
    rates = [float(v) for d in facts.declarations
             if isinstance(v := d.get("restoreMbPerSecond"), int | float) and not isinstance(v, bool)]
    rate = min(rates) if rates else float(limits.RESTORE_MB_PER_SECOND)
    if rate <= 0:  # a restore that never ends: no bound
        return Estimate(None, f"restore {size:g} GB at {rate:g} MB/s never finishes")
    minutes = size * 1024 / rate / 60
    return Estimate(minutes, f"restore {size:g} GB at {rate:g} MB/s = {_hours(minutes)}")


def _failback(found: Facts, objectives: Mapping[str, Any], apply_minutes: float, results: list[Assessment]) -> None:
    """The way back after a regional outage (see FAILBACK_OF): rebuild, then a planned switchover."""
    borrowed = objectives.get(FAILBACK_OF) or {}
    if borrowed.get("rtoMinutes") is None:
        return
    rebuild = _restore(found)
    terms = [Term(RESTORE, rebuild.minutes, f"rebuild the old primary as a replica: {rebuild.derivation}"),
             Term(APPLY, apply_minutes, f"pulumi up through tools.failover demote {_hours(apply_minutes)}"),
             _propagate(found), _redeploy(found)]
    applying = [term for term in terms if term is not None]
    results.append(Assessment("failback", int(borrowed["rtoMinutes"]), 0, compose(applying),
                              Estimate(0.0, "planned switchover: writes pause until the other site has replayed them all"),
                              applying))


def assess(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Assessment]:
    """The scenarios the given resources allow to assess, with worst-case RPO and estimated RTO.

    A primary stack alone assesses what its data decides (corruption, deletion, breach); a standby stack
    alone what its copies and traffic switch decide (regional outage, deletion of user files); both together
    assess everything. Each RTO is composed from the scenario's terms (see the module's docstring).
    """
    found = facts(resources)
    if not found.declarations:
        return []
    objectives = found.declarations[0].get("objectives") or {}
    decide_minutes = float(found.declared("decisionMinutes", limits.DECISION_MINUTES))
    decide = Term(DECIDE, decide_minutes, f"declared decision {_hours(decide_minutes)}")
    apply_minutes = float(found.declared("applyMinutes", limits.APPLY_MINUTES))
    has_primary, has_standby = "primary" in found.sites, "standby" in found.sites
    results = []

    def add(scenario: str, terms: list[Term | None], rpo: Estimate | None) -> None:
        target = objectives.get(scenario) or {}
        rto_target = target.get("rtoMinutes")
        if rto_target is None:
            raise ValueError(f"the recovery objectives declare no rtoMinutes for {scenario}")
        applying = [term for term in terms if term is not None]
        results.append(Assessment(scenario, int(rto_target), target.get("rpoMinutes"), compose(applying), rpo,
                                  applying))

    if has_primary:
        add("databaseCorruption", [decide, _restore_term(found)], _database_point(found))
        add("securityBreach", [decide, Term(APPLY, apply_minutes,
                                            f"rotate the secrets, then pulumi up {_hours(apply_minutes)}"),
                               _redeploy(found)], None)
    if has_standby:
        if found.declared("databaseReplica.enabled"):
            lag = float(found.declared("databaseReplica.maxLagMinutes", limits.DATABASE_REPLICA_LAG_MINUTES))
            database = Estimate(lag, f"database: cross-region replica (declared, lag {_hours(lag)})")
            promote = float(found.declared("databaseReplica.promoteMinutes", limits.DATABASE_REPLICA_PROMOTE_MINUTES))
            restore = Term(RESTORE, promote, f"promote the replica {_hours(promote)}")
        else:
            dump, copy = _dump_interval(found), _copy_delay(found, DATABASE_DUMPS.label)
            total = None if dump.minutes is None or copy.minutes is None else dump.minutes + copy.minutes
            database = Estimate(total, f"database: {dump.derivation} + {copy.derivation}; or declare a replica")
            restore = _restore_term(found)
        files = _copy_delay(found, USER_FILES.label)
        apply = Term(APPLY, apply_minutes, f"pulumi up through tools.failover promote {_hours(apply_minutes)}")
        add("regionalOutage", [_detect(found), decide, restore, apply, _propagate(found), _redeploy(found)],
            database.worse(Estimate(files.minutes, f"user files: {files.derivation}")))
        if found.declared("databaseReplica.enabled"):
            _failback(found, objectives, apply_minutes, results)
    deletion_parts = []
    if has_primary:
        deletion_parts.append(_database_point(found))
    if has_standby:
        files = _copy_delay(found, USER_FILES.label)
        deletion_parts.append(Estimate(files.minutes, f"user files: {files.derivation}"))
    if deletion_parts:
        worst = deletion_parts[0]
        for part in deletion_parts[1:]:
            worst = worst.worse(part)
        add("dataDeletion", [decide, _restore_term(found)], worst)
    order = {name: index for index, name in enumerate(SCENARIOS)}
    return sorted(results, key=lambda a: order[a.scenario])
