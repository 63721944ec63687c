"""Monitoring rules: every backup job and every failover target is watched by an alert that notifies someone."""

from __future__ import annotations

from pulumi_policy import Severity

from ._base import ALERT_POLICY, RUN_JOB, UPTIME_CHECK, get, labels, of_type, stack_policy
from .dns import failover_targets


def _condition_text(alert) -> str:
    parts = []
    for condition in alert.props.get("conditions") or []:
        for path in ("conditionThreshold.filter", "conditionPrometheusQueryLanguage.query",
                     "conditionMatchedLog.filter", "conditionAbsent.filter"):
            parts.append(str(get(condition, path, "")))
    return " ".join(parts)


def _notifies(alert) -> bool:
    # A standby's age alert is disabled until promotion; it exists and notifies once enabled, which is the rule.
    return bool(alert.props.get("notificationChannels"))


def _backup_alerts(args, violate):
    alerts = of_type(args.resources, ALERT_POLICY)
    for job in of_type(args.resources, RUN_JOB):
        arguments = get(job.props, "template.template.containers.0.args") or []
        if arguments[:1] != ["backup"]:
            continue
        name = job.props.get("name")
        watching = [a for a in alerts if f'job_name="{name}"' in _condition_text(a) and _notifies(a)]
        kinds = {labels(a.props).get("raptorflow-alert") for a in watching}
        for needed in ("backup-failed", "backup-age"):
            if needed not in kinds:
                violate(f"backup job {name} has no {needed} alert with a notification channel", job.urn)


backup_job_alerts = stack_policy(
    "raptorflow-monitoring-backup-job-alerts",
    "Every backup job has a failure alert and a backup-age alert, each with a notification channel.",
    "Cloud Monitoring metric-absence guidance",
    Severity.HIGH,
    "give the stack a `monitoring` section; SiteMonitoring adds both alerts for every backup job it is handed",
    _backup_alerts,
)


def _target_checks(args, violate):
    checks = {get(c.props, "monitoredResource.labels.host"): c for c in of_type(args.resources, UPTIME_CHECK)}
    alerted = {labels(a.props).get("raptorflow-target") for a in of_type(args.resources, ALERT_POLICY)
               if labels(a.props).get("raptorflow-alert") == "uptime" and a.props.get("notificationChannels")}
    for host, urn in failover_targets(args.resources):
        check = checks.get(host)
        if check is None:
            violate(f"failover target {host} has no uptime check", urn)
        elif labels(check.props).get("raptorflow-target") not in alerted:
            violate(f"failover target {host} has an uptime check but no alert with a notification channel", urn)


failover_target_checks = stack_policy(
    "raptorflow-monitoring-failover-target-checks",
    "Every failover target (public name, primary and standby) has an uptime check and an alert.",
    "load-balancer-health-checks",
    Severity.HIGH,
    "SiteMonitoring adds an uptime check and alert for each hostname and target it is handed",
    _target_checks,
)

POLICIES = [backup_job_alerts, failover_target_checks]
