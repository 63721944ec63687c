"""The recovery model on hand-made plans with known answers, and on the repo's own stack files."""

from __future__ import annotations

import pytest

from components import defaults
from core.alerts import CATALOG, UPTIME_FAILED_PERIODS
from core.contracts import BackupKind, Command, Label, ResourceType, job_argv, job_labels, run_job_uri
from core.limits import UPTIME_PERIOD_SECONDS, UPTIME_REGIONS, UPTIME_TIMEOUT_SECONDS, VERCEL_REDEPLOY_MINUTES
from core.recovery_model import Assessment, Term, assess
from tools.readiness import assess_plans

# The hand-made plans declare their own objectives and figures: fixed inputs, so each known answer below holds
# whatever the plan's limits are. The repo's stack files are assessed against the plan's figures at the end.
OBJECTIVES = {
    "databaseCorruption": {"rtoMinutes": 240, "rpoMinutes": 60},
    "regionalOutage": {"rtoMinutes": 120, "rpoMinutes": 15},
    "securityBreach": {"rtoMinutes": 60, "rpoMinutes": None},
    "dataDeletion": {"rtoMinutes": 360, "rpoMinutes": 1440},
}


def declaration(site: str, pitr: bool = False, replica: bool = False) -> tuple[str, dict]:
    return ("raptorflow:recovery:RecoveryObjectives", {
        "site": site, "objectives": OBJECTIVES,
        "pitr": {"enabled": pitr, "windowDays": 7, "rpoMinutes": 2},
        "databaseReplica": {"enabled": replica, "maxLagMinutes": 1, "promoteMinutes": 15},
        "databaseSizeGb": 30, "restoreMbPerSecond": 64, "decisionMinutes": 15, "applyMinutes": 10,
        "eventDrivenLagMinutes": 10,
    })


def backup(cron: str, paused: bool = False, kind: str = "full") -> list[tuple[str, dict]]:
    job = f"db-backup-{kind}-{cron.replace(' ', '-').replace('*', 'x')}"
    return [
        ("gcp:cloudrunv2/job:Job", {"name": job, "labels": job_labels(Command.BACKUP, BackupKind(kind)),
                                    "template": {"template": {"containers": [
                                        {"args": job_argv(Command.BACKUP, BackupKind(kind))}]}}}),
        ("gcp:cloudscheduler/job:Job", {"schedule": cron, "paused": paused, "timeZone": "UTC", "httpTarget": {
            "uri": run_job_uri("p", "r", job)}}),
    ]


def replica(role: str, daily: bool = True, live: bool = False) -> list[tuple[str, dict]]:
    sink = f"{role}-copy"
    resources = [("gcp:storage/bucket:Bucket", {"name": sink, "labels": {"backup-role": role}})]
    if daily:
        resources.append(("gcp:storage/transferJob:TransferJob", {
            "transferSpec": {"gcsDataSink": {"bucketName": sink}}, "schedule": {"repeatInterval": "86400s"}}))
    if live:
        resources.append(("gcp:storage/transferJob:TransferJob", {"replicationSpec": {"gcsDataSink": {"bucketName": sink}}}))
    return resources


def record(ttl: int, proxied: bool) -> tuple[str, dict]:
    return ("cloudflare:index/dnsRecord:DnsRecord", {"ttl": ttl, "proxied": proxied})


def vercel_variable(key: str) -> tuple[str, dict]:
    return ("vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable",
            {"key": key, "value": "backup-region", "targets": ["production"]})


def uptime(period: int = 60, duration: int = 120, threshold: float = 1, timeout: int = 10) -> list[tuple[str, dict]]:
    """An uptime check probing from the plan's three regions and its P0 alert: fires when more than `threshold`
    regions fail for `duration` seconds (the detect term: period + timeout + duration)."""
    kind = CATALOG["uptime"]
    return [(ResourceType.UPTIME_CHECK, {"period": f"{period}s", "timeout": f"{timeout}s",
                                         "selectedRegions": list(UPTIME_REGIONS),
                                         "userLabels": {Label.TARGET: "api-primary"}}),
            (ResourceType.ALERT_POLICY, {"enabled": True, "userLabels": {
                Label.ALERT: kind.slug, Label.SEVERITY: kind.severity.lower(), Label.TARGET: "api-primary"},
                "conditions": [{"conditionThreshold": {"comparison": "COMPARISON_GT", "thresholdValue": threshold,
                                                       "duration": f"{duration}s"}}]})]


DETECT = (60 + 10 + 120) / 60  # uptime()'s P0 alert: every region probes within the 60 s period, a dead site
# fails the probe at its 10 s timeout, then the condition holds for 120 s


def rpo_minutes(assessment: Assessment) -> float | None:
    assert assessment.rpo is not None, f"{assessment.scenario} has no RPO estimate"
    return assessment.rpo.minutes


def scenario(resources, name):
    return next(a for a in assess(resources) if a.scenario == name)


def test_daily_dumps_without_pitr_lose_a_day_on_corruption():
    result = scenario([declaration("primary"), *backup("0 2 * * *")], "databaseCorruption")
    assert result.rpo.minutes == 1440 and not result.rpo_met and not result.met
    assert "full dump every 24 h (0 2 * * *); add an hourly schedule or declare PITR" in result.binding


def test_hourly_dumps_meet_the_one_hour_corruption_rpo():
    result = scenario([declaration("primary"), *backup("0 2 * * *"), *backup("0 * * * *")], "databaseCorruption")
    assert result.rpo.minutes == 60 and result.rpo_met


def test_pitr_sets_the_database_recovery_point():
    result = scenario([declaration("primary", pitr=True), *backup("0 2 * * *")], "databaseCorruption")
    assert result.rpo.minutes == 2 and "Supabase PITR (declared, 7-day window, 2 min)" in result.rpo.derivation


def test_restore_time_comes_from_size_and_throughput():
    result = scenario([declaration("primary"), *backup("0 2 * * *")], "databaseCorruption")
    # 30 GB * 1024 / 64 MB/s = 480 s = 8 min, plus 15 min to decide
    assert result.rto.minutes == pytest.approx(23.0) and result.rto_met


def test_no_replica_makes_the_regional_outage_rpo_unbounded():
    result = scenario([declaration("standby"), *backup("0 2 * * *", paused=True), record(60, False)], "regionalOutage")
    assert result.rpo.minutes is None and not result.met
    assert "no copy of database-dumps in another region" in result.rpo.derivation


def test_daily_transfer_versus_event_driven_replication():
    daily = [declaration("standby", replica=True), *replica("user-files"), record(60, False)]
    live = [declaration("standby", replica=True), *replica("user-files", live=True), record(60, False)]
    assert scenario(daily, "regionalOutage").rpo.minutes == 1440
    assert scenario(live, "regionalOutage").rpo.minutes == 10
    assert scenario(live, "regionalOutage").rpo_met


def test_paused_standby_jobs_stand_in_for_the_primary_schedule_when_dumps_are_copied():
    resources = [declaration("standby"), *backup("0 2 * * *", paused=True), *replica("database-dumps", live=True),
                 *replica("user-files", live=True), record(1, True)]
    result = scenario(resources, "regionalOutage")
    assert result.rpo.minutes == 1440 + 10
    assert "the standby's paused schedule, as on the primary" in result.rpo.derivation


def test_dns_only_ttl_adds_to_the_switch_but_proxied_names_do_not():
    base = [declaration("standby", replica=True), *replica("user-files", live=True), *uptime()]
    proxied = scenario([*base, record(1, True)], "regionalOutage")
    dns_only = scenario([*base, record(300, False)], "regionalOutage")
    # detect + decide 15 + promote the replica 15 + apply 10 + propagate (the longest DNS-only TTL)
    assert proxied.rto.minutes == DETECT + 15 + 15 + 10
    assert dns_only.rto.minutes == DETECT + 15 + 15 + 10 + 5
    slow = scenario([*base, ("cloudflare:index/dnsRecord:DnsRecord", {"ttl": 1200, "proxied": False})],
                    "regionalOutage")
    assert slow.rto.minutes == DETECT + 15 + 15 + 10 + 20
    assert slow.term("propagate") == Term("propagate", 20, "longest DNS-only TTL 1200 s (proxied names switch at once)")


def test_the_app_takes_its_flipped_env_only_after_a_vercel_redeploy():
    base = [declaration("standby", replica=True), *replica("user-files", live=True), record(1, True), *uptime()]
    without_app = scenario(base, "regionalOutage")
    with_app = scenario([*base, vercel_variable("REGION"), vercel_variable("SUPABASE_URL")], "regionalOutage")
    # the redeploy starts when the apply ends, beside the DNS propagation: the slower of the two counts
    assert without_app.term("redeploy") is None and without_app.rto.minutes == DETECT + 15 + 15 + 10
    assert with_app.rto.minutes == DETECT + 15 + 15 + 10 + VERCEL_REDEPLOY_MINUTES  # propagate 0 (proxied)
    assert f"max(propagate 0 min, redeploy {VERCEL_REDEPLOY_MINUTES:g} min)" in with_app.rto.derivation
    assert with_app.term("redeploy") == Term("redeploy", VERCEL_REDEPLOY_MINUTES,
                                             f"Vercel redeploy {VERCEL_REDEPLOY_MINUTES:g} min")


def test_a_load_balancer_propagates_after_its_failed_health_checks():
    monitor = (ResourceType.LOAD_BALANCER_MONITOR, {"interval": 60, "retries": 2})
    outage = scenario([declaration("standby", replica=True), *replica("user-files", live=True), *uptime(), monitor],
                      "regionalOutage")
    assert outage.term("propagate").minutes == 60 * (2 + 1) / 60
    assert outage.rto.minutes == DETECT + 15 + 15 + 10 + 3


def test_without_a_replica_the_outage_restores_the_copied_dump():
    resources = [declaration("standby"), *backup("0 2 * * *", paused=True), *replica("database-dumps", live=True),
                 *replica("user-files", live=True), record(1, True), *uptime()]
    outage = scenario(resources, "regionalOutage")
    # 30 GB * 1024 / 64 MB/s = 8 min
    assert outage.term("restore") == Term("restore", 8, "restore 30 GB at 64 MB/s = 8 min")
    assert outage.rto.minutes == DETECT + 15 + 8 + 10


def test_a_stack_only_assesses_what_it_can_see():
    assert [a.scenario for a in assess([declaration("primary"), *backup("0 2 * * *")])] == [
        "databaseCorruption", "securityBreach", "dataDeletion"]
    assert [a.scenario for a in assess([declaration("standby"), *replica("user-files")])] == [
        "regionalOutage", "dataDeletion"]
    assert assess([*backup("0 2 * * *")]) == []


def test_the_repos_stack_files_meet_every_objective_with_hand_computed_figures(prod_plan, dr_plan):
    report = {a.scenario: a for a in assess_plans([prod_plan, dr_plan])}
    assert all(a.met for a in report.values()), {k: a.binding for k, a in report.items() if not a.met}
    # The stack files declare PITR (prod), a replica and event-driven replication (dr) and keep the plan's
    # figures (components/defaults.py) for everything else.
    decide, apply = defaults.DECISION_MINUTES, defaults.APPLY_MINUTES
    user_files_lag = defaults.EVENT_DRIVEN_LAG_MINUTES
    # corruption: PITR's loss; restore the database at the measured throughput, after deciding
    assert rpo_minutes(report["databaseCorruption"]) == defaults.PITR_RPO_MINUTES
    assert report["databaseCorruption"].rto.minutes == pytest.approx(
        decide + defaults.DATABASE_SIZE_GB * 1024 / defaults.RESTORE_MB_PER_SECOND / 60)
    # outage: the worse of the replica's lag and the user files' replication; RTO detect (the P0 uptime alert: the
    # check's period + its timeout + the condition's duration of UPTIME_FAILED_PERIODS periods) +
    # decide + promote the replica + apply + the slower of the DNS-only TTL and the Vercel redeploy
    ttl_minutes = max(r.inputs["ttl"] for r in dr_plan.of_type("cloudflare:index/dnsRecord:DnsRecord")
                      if not r.inputs["proxied"]) / 60
    detect = (UPTIME_PERIOD_SECONDS * (1 + UPTIME_FAILED_PERIODS) + UPTIME_TIMEOUT_SECONDS) / 60
    assert rpo_minutes(report["regionalOutage"]) == max(defaults.DATABASE_REPLICA_LAG_MINUTES, user_files_lag)
    assert report["regionalOutage"].rto.minutes == pytest.approx(
        detect + decide + defaults.DATABASE_REPLICA_PROMOTE_MINUTES + apply + max(ttl_minutes, VERCEL_REDEPLOY_MINUTES))
    assert f"redeploy {VERCEL_REDEPLOY_MINUTES:g} min" in report["regionalOutage"].rto.derivation
    # breach: decide, then rotate (one apply), then the Vercel redeploy that hands the apps the new credentials;
    # deletion: the worse of PITR and the user files' lag
    assert report["securityBreach"].rto.minutes == decide + apply + VERCEL_REDEPLOY_MINUTES
    # failback: rebuild the old primary (the database at the restore throughput), demote, the slower of the TTL
    # and the redeploy; planned (no detect, no decide) and nothing lost
    assert report["failback"].rto.minutes == pytest.approx(
        defaults.DATABASE_SIZE_GB * 1024 / defaults.RESTORE_MB_PER_SECOND / 60 + apply
        + max(ttl_minutes, VERCEL_REDEPLOY_MINUTES))
    assert rpo_minutes(report["failback"]) == 0
    assert rpo_minutes(report["dataDeletion"]) == max(defaults.PITR_RPO_MINUTES, user_files_lag)
