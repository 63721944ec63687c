"""Each component alone, with minimal Args of its own (not the repo's stack values): what it builds from them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from components.backup_bucket import BackupBucket, BackupBucketArgs
from components.config import (
    BackupBucketSettings,
    DatabaseBackupSettings,
    DnsExportSettings,
    FailoverHostname,
    MonitoringSettings,
)
from components.failover_record import FailoverRecord, FailoverRecordArgs
from components.scheduled_backup import ScheduledDatabaseBackup, ScheduledDatabaseBackupArgs, ZoneExport, ZoneExportArgs
from components.site_monitoring import BackupWatch, SiteMonitoring, SiteMonitoringArgs, UptimeTarget
from core.alerts import CATALOG
from core.limits import SECONDS_PER_DAY

from .conftest import depends_on

LABELS = {"environment": "test", "managed-by": "pulumi"}
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"


def test_backup_bucket_keeps_what_its_settings_say(record):
    def build():
        BackupBucket("files", BackupBucketArgs(
            role="user-files", replication_labels={"replica-region": "asia-east1"}, bucket_name="acme-files",
            project="acme-test", region="us-west1", settings=BackupBucketSettings(retention_days=45, soft_delete_days=14),
            kms_rotation_days=60, labels=LABELS,
        ))

    plan = record(build)
    bucket = plan.named("files-bucket").inputs
    assert bucket["retentionPolicy"]["retentionPeriod"] == str(45 * SECONDS_PER_DAY)
    assert bucket["softDeletePolicy"]["retentionDurationSeconds"] == 14 * SECONDS_PER_DAY
    assert bucket["labels"]["backup-role"] == "user-files" and bucket["labels"]["replica-region"] == "asia-east1"
    assert bucket["logging"]["logBucket"] == plan.named("files-logs").inputs["name"]
    assert plan.named("files-key").inputs["rotationPeriod"] == f"{60 * SECONDS_PER_DAY}s"
    assert depends_on(plan, "files-bucket", "files-key-storage-agent"), "the bucket needs its key usable first"


def _backups(paused: bool, dns: bool) -> tuple[Callable[[], None], list[BackupWatch]]:
    """A build of the database backups (and the zone export), and the list it fills with what they watch."""
    watches: list[BackupWatch] = []

    def build() -> None:
        backups = ScheduledDatabaseBackup("db", ScheduledDatabaseBackupArgs(
            project="acme-test", region="us-west1", bucket_name="acme-dumps", labels=LABELS, paused=paused,
            settings=DatabaseBackupSettings(image="img:2", schedules={"full": "0 */6 * * *"}),
            database_url="postgresql://source", scratch_database_url="postgresql://scratch",
        ))
        watches.extend(backups.watches)
        if dns:
            export = ZoneExport("zone", ZoneExportArgs(zone_id="z" * 32, api_token="token", backups=backups,
                                                       settings=DnsExportSettings()))
            watches.extend(export.watches)

    return build, watches


@pytest.mark.parametrize("paused", [False, True])
def test_database_backups_say_what_to_watch(record, paused):
    build, watches = _backups(paused, dns=False)
    plan = record(build)
    kinds = {watch.kind: watch for watch in watches}
    assert set(kinds) == {"full", "schema", "restore-check"}
    assert kinds["full"].interval_hours == 6 and kinds["full"].active is (not paused)
    assert kinds["restore-check"].age_alert is False, "a monthly check has no age alert"
    assert plan.named("db-full-schedule").inputs["paused"] is paused
    assert plan.named("db-restore-check-schedule").inputs["paused"] is False, "the restore check always runs"


def test_the_zone_export_runs_as_the_create_only_writer_into_its_own_prefix(record):
    build, watches = _backups(paused=True, dns=True)
    plan = record(build)
    job = plan.named("db-dns-export").inputs["template"]["template"]
    assert job["serviceAccount"] == "db-writer@acme-test.iam.gserviceaccount.com"
    envs = {env["name"]: env["value"] for env in job["containers"][0]["envs"]}
    assert envs["BACKUP_PREFIX"] == "cloudflare" and envs["BACKUP_BUCKET"] == "acme-dumps"
    assert job["containers"][0]["args"] == ["export-dns", "--zone-id", "z" * 32]
    assert plan.named("db-dns-export-schedule").inputs["paused"] is False, "DNS is exported whether promoted or not"
    assert plan.named("db-dns-export").parent.endswith("raptorflow:backup:ZoneExport::zone")
    (watch,) = [w for w in watches if w.kind == "dns-export"]
    assert (watch.failure_alert, watch.command) == ("dns-export-failed", "export-dns")


def test_site_monitoring_builds_each_alert_from_its_catalog_entry(record):
    def build():
        SiteMonitoring("mon", SiteMonitoringArgs(
            project="acme-test", labels=LABELS,
            settings=MonitoringSettings(notifications={"emails": ["ops@example.com"]}, backup_age_margin_hours=2),
            backups=[BackupWatch("job-a", "full", "full backup", 12, "backup-failed", "backup")],
            uptime=[UptimeTarget("eu.example.com", "eu", serves_traffic=False)],
        ))

    plan = record(build)
    alerts = {a.name: a.inputs for a in plan.of_type(ALERT)}
    assert set(alerts) == {"mon-full-failed", "mon-full-age", "mon-uptime-eu"}
    age = alerts["mon-full-age"]["conditions"][0]["conditionPrometheusQueryLanguage"]
    assert "[14h]" in age["query"], "the schedule's 12 h gap plus the 2 h margin"
    assert age["query"].endswith(f"< {CATALOG['backup-age'].threshold:g}"), "no creation time given: no grace"
    uptime = alerts["mon-uptime-eu"]
    assert uptime["userLabels"]["severity"] == "p2", "a target that serves no traffic pages at the standby severity"
    assert CATALOG["uptime"].standby_meaning in uptime["documentation"]["content"]
    assert "curl -v https://eu.example.com/health" in uptime["documentation"]["content"]


@pytest.mark.parametrize("standby_active, content", [(False, "us.example.com"), (True, "eu.example.com")])
def test_a_failover_record_points_at_the_active_site(record, standby_active, content):
    def build():
        FailoverRecord("rec", FailoverRecordArgs(
            zone_id="a" * 32, domain="example.com", standby_active=standby_active,
            hostname=FailoverHostname(name="app", state="new", proxied=False, ttl_seconds=120, primary="us.example.com",
                                      standby="eu.example.com"),
        ))

    record_plan = record(build)
    (dns,) = [r for r in record_plan.resources if r.type.startswith("cloudflare:")]
    assert (dns.inputs["name"], dns.inputs["content"], dns.inputs["ttl"]) == ("app.example.com", content, 120)
