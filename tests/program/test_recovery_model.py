"""The recovery model on hand-made plans with known answers, and on the repo's own stack files."""

from __future__ import annotations

import pytest

from components import defaults
from core.contracts import BackupKind, Command, job_argv, job_labels, run_job_uri
from core.limits import VERCEL_REDEPLOY_MINUTES
from core.recovery_model import Assessment, assess
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
    base = [declaration("standby", replica=True), *replica("user-files", live=True)]
    proxied = scenario([*base, record(1, True)], "regionalOutage")
    dns_only = scenario([*base, record(300, False)], "regionalOutage")
    # decide 15 + slowest of (apply 10 + TTL) and promote the replica 15
    assert proxied.rto.minutes == 15 + 15
    assert dns_only.rto.minutes == 15 + 15  # apply 10 + TTL 5 = 15, as slow as promoting
    slow = scenario([*base, ("cloudflare:index/dnsRecord:DnsRecord", {"ttl": 1200, "proxied": False})],
                    "regionalOutage")
    assert slow.rto.minutes == 15 + 10 + 20


def test_the_app_takes_its_flipped_env_only_after_a_vercel_redeploy():
    base = [declaration("standby", replica=True), *replica("user-files", live=True), record(1, True)]
    without_app = scenario(base, "regionalOutage")
    with_app = scenario([*base, vercel_variable("REGION"), vercel_variable("SUPABASE_URL")], "regionalOutage")
    # decide 15 + slowest of (apply 10 + TTL 0), (apply 10 + the Vercel redeploy the model assumes) and promote
    # the replica 15
    assert without_app.rto.minutes == 15 + 15 and "Vercel" not in without_app.rto.derivation
    assert with_app.rto.minutes == 15 + max(10 + VERCEL_REDEPLOY_MINUTES, 15)
    assert (f"app env (pulumi up 10 min + Vercel redeploy {VERCEL_REDEPLOY_MINUTES:g} min)" in with_app.rto.derivation
            and "database (promote the replica 15 min)" in with_app.rto.derivation)


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
    # outage: the worse of the replica's lag and the user files' replication; RTO decide + the slowest of the
    # DNS switch (apply + the longest DNS-only TTL), the app's redeploy (apply + Vercel) and promoting the replica
    ttl_minutes = max(r.inputs["ttl"] for r in dr_plan.of_type("cloudflare:index/dnsRecord:DnsRecord")
                      if not r.inputs["proxied"]) / 60
    assert rpo_minutes(report["regionalOutage"]) == max(defaults.DATABASE_REPLICA_LAG_MINUTES, user_files_lag)
    assert report["regionalOutage"].rto.minutes == pytest.approx(decide + max(
        apply + ttl_minutes, apply + VERCEL_REDEPLOY_MINUTES, defaults.DATABASE_REPLICA_PROMOTE_MINUTES))
    assert f"Vercel redeploy {VERCEL_REDEPLOY_MINUTES:g} min" in report["regionalOutage"].rto.derivation
    # breach: decide, then rotate and redeploy (one apply); deletion: the worse of PITR and the user files' lag
    assert report["securityBreach"].rto.minutes == decide + apply
    assert rpo_minutes(report["dataDeletion"]) == max(defaults.PITR_RPO_MINUTES, user_files_lag)
