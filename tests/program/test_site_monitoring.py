"""SiteMonitoring on both plans: every backup, transfer and failover target is watched, with the plan's severities."""

from __future__ import annotations

import pytest

from components import defaults
from core.alerts import ALERT_AUTO_CLOSE_SECONDS, ALERT_NOTIFICATION_RATE_LIMIT_SECONDS
from core.schedule import max_interval_hours
from tools.offline import is_secret

ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
UPTIME = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
RUN_JOB = "gcp:cloudrunv2/job:Job"
TRANSFER = "gcp:storage/transferJob:TransferJob"


def _alerts(plan) -> dict[tuple[str, str], dict]:
    return {(a.inputs["userLabels"]["raptorflow-alert"], a.inputs["userLabels"]["raptorflow-target"]): a.inputs
            for a in plan.of_type(ALERT)}


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_every_backup_job_has_a_failure_and_an_age_alert(make_plan, stack):
    plan = make_plan(stack)
    alerts = _alerts(plan)
    kinds = [job.inputs["template"]["template"]["containers"][0]["args"] for job in plan.of_type(RUN_JOB)]
    for args in kinds:
        if args[0] == "backup":
            assert ("backup-failed", args[2]) in alerts and ("backup-age", args[2]) in alerts, args
        else:
            assert ("restore-check-failed", "restore-check") in alerts


def test_backup_age_is_a_threshold_over_interval_plus_margin(prod_plan):
    query = _alerts(prod_plan)[("backup-age", "full")]["conditions"][0]["conditionPrometheusQueryLanguage"]["query"]
    gap = max_interval_hours(prod_plan.named("db-backup-full-schedule").inputs["schedule"])
    window = gap + defaults.BACKUP_AGE_MARGIN_HOURS
    assert f"[{window:g}h]" in query, f"the schedule's longest gap ({gap:g} h) + the margin"
    assert "or vector(0)) < 1)" in query, "must fire even when no backup ever succeeded"
    assert 'job_name="db-backup-full"' in query and 'command="backup"' in query


def test_every_transfer_job_is_watched_for_failure_and_lag(dr_plan):
    alerts = _alerts(dr_plan)
    assert len([j for j in dr_plan.of_type(TRANSFER) if "transferSpec" in j.inputs]) == 2
    for slug in ("db-dumps", "user-files"):
        failed = alerts[("transfer-failed", slug)]
        assert "conditionMatchedLog" in failed["conditions"][0]
        assert failed["alertStrategy"]["notificationRateLimit"]["period"] == f"{ALERT_NOTIFICATION_RATE_LIMIT_SECONDS}s"
        assert ("transfer-behind", slug) in alerts


def test_every_failover_target_has_an_uptime_check_and_an_alert(dr_plan):
    checks = {c.inputs["monitoredResource"]["labels"]["host"]: c.inputs for c in dr_plan.of_type(UPTIME)}
    records = dr_plan.of_type("cloudflare:index/dnsRecord:DnsRecord")
    hosts = {r.inputs["name"] for r in records}
    targets = {part.strip().rstrip(",") for r in records for part in r.inputs["comment"].split()[3::2]}
    assert hosts | targets <= set(checks), "every hostname and both targets are checked"
    for check in checks.values():
        assert check["httpCheck"]["path"] == "/health" and check["httpCheck"]["useSsl"] is True
        assert len(check["selectedRegions"]) >= 3
    uptime_alerts = [a for (alert, _), a in _alerts(dr_plan).items() if alert == "uptime"]
    assert len(uptime_alerts) == len(checks)


def test_active_site_pages_p0_and_standby_site_p2_and_promotion_swaps_them(make_plan):
    for promoted, active, idle in (("false", "primary", "standby"), ("true", "standby", "primary")):
        alerts = _alerts(make_plan("dr", f"raptorflow-dr:promoted={promoted}"))
        assert alerts[("uptime", f"app-{active}")]["userLabels"]["severity"] == "p0"
        assert alerts[("uptime", f"app-{active}")]["severity"] == "CRITICAL"
        assert alerts[("uptime", f"app-{idle}")]["userLabels"]["severity"] == "p2"
        assert alerts[("uptime", "app-public")]["userLabels"]["severity"] == "p0"


def test_standby_age_alerts_wait_for_promotion(make_plan):
    for promoted in (False, True):
        alerts = _alerts(make_plan("dr", f"raptorflow-dr:promoted={str(promoted).lower()}"))
        assert alerts[("backup-age", "full")]["enabled"] is promoted
        assert alerts[("backup-failed", "full")]["enabled"] is True


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_every_alert_has_channels_a_severity_documentation_and_rate_control(make_plan, stack):
    plan = make_plan(stack)
    channels = {c.name for c in plan.of_type(CHANNEL)}
    assert len(channels) == 2
    for alert in plan.of_type(ALERT):
        inputs = alert.inputs
        assert len(inputs["notificationChannels"]) == 2, f"{alert.name} notifies nobody"
        assert inputs["userLabels"]["severity"] in ("p0", "p1", "p2", "p3")
        assert inputs["severity"] in ("CRITICAL", "ERROR", "WARNING")
        doc = inputs["documentation"]["content"]
        assert "First steps:" in doc and "Runbook: https://" in doc and "respond within" in doc, alert.name
        assert inputs["alertStrategy"]["autoClose"] == f"{ALERT_AUTO_CLOSE_SECONDS}s"


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_tampering_with_backup_storage_pages_p0(make_plan, stack):
    plan = make_plan(stack)
    tampering = _alerts(plan)[("backup-tampering", "backup-storage")]
    log_filter = tampering["conditions"][0]["conditionMatchedLog"]["filter"]
    for bucket in plan.of_type("gcp:storage/bucket:Bucket"):
        if not bucket.inputs["name"].endswith("-logs"):
            assert f'"{bucket.inputs["name"]}"' in log_filter
    assert "DestroyCryptoKeyVersion" in log_filter and tampering["userLabels"]["severity"] == "p0"


def test_slack_token_is_a_secret_input(prod_plan, run_cli):
    (slack,) = [c for c in prod_plan.of_type(CHANNEL) if c.inputs["type"] == "slack"]
    assert is_secret(slack.inputs["sensitiveLabels"]), "the Slack token must be a secret input"
    result = run_cli("tools.plan", "prod", "--json")
    assert "c2V0LXdpdGgtcHVsdW1pLWNvbmZpZy1zZXQtLXNlY3JldA" not in result.stdout


def test_a_stack_without_a_notification_channel_is_rejected(run_cli, stack_file):
    path = stack_file("prod", lambda c: c["raptorflow-dr:monitoring"].update(notifications={"emails": []}))
    result = run_cli("tools.plan", "prod", "--stack-file", str(path))
    assert result.returncode == 2
    assert "raptorflow-dr:monitoring.notifications: at least one notification channel is required" in result.stderr


def test_a_new_hostname_brings_its_own_checks_and_alerts(make_plan, run_cli, stack_file, dr_plan):
    extra = {"name": "status", "state": "new", "type": "CNAME", "primary": "status-us.raptorflow.app",
             "standby": "status-eu.raptorflow.app"}
    path = stack_file("dr", lambda c: c["raptorflow-dr:standby"]["failover"]["hostnames"].append(extra))
    import json
    result = run_cli("tools.plan", "dr", "--stack-file", str(path), "--json")
    plan = json.loads(result.stdout)
    checks = [r for r in plan["resources"] if r["type"] == UPTIME]
    alerts = [r for r in plan["resources"] if r["type"] == ALERT]
    assert len(checks) == len(dr_plan.of_type(UPTIME)) + 3
    assert len(alerts) == len(dr_plan.of_type(ALERT)) + 3


def test_prod_watches_its_own_origins(prod_plan):
    checks = {c.inputs["monitoredResource"]["labels"]["host"] for c in prod_plan.of_type(UPTIME)}
    assert checks == {"app-us.raptorflow.app", "api-us.raptorflow.app"}
    alerts = _alerts(prod_plan)
    assert alerts[("uptime", "app-us-raptorflow-app")]["userLabels"]["severity"] == "p0"
