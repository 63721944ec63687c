"""Alerts are on and reach someone: every alert policy is enabled and has a notification channel."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import (
    ALERT_POLICY,
    Label,
    Weakening,
    condition_text,
    labels,
    of_type,
    paused_until_promoted,
    stack_policy,
    watched_jobs,
)


def _check(args, violate):
    paused = paused_until_promoted(args.resources)
    for alert in of_type(args.resources, ALERT_POLICY):
        name = alert.props.get("displayName") or alert.name
        if not alert.props.get("notificationChannels"):
            violate(f"alert {name} notifies nobody (no notification channel)", alert.urn)
        if alert.props.get("enabled") is False:
            watched = watched_jobs(condition_text(alert.props))
            waiting = (labels(alert.props).get(Label.ALERT) == "backup-age" and bool(watched)
                       and all(job in paused for job in watched))
            if not waiting:
                violate(f"alert {name} is disabled", alert.urn)


POLICY = stack_policy(
    "raptorflow-monitoring-alerts-enabled",
    "Every alert policy is enabled and has a notification channel; only a standby's backup-age alerts wait, "
    "disabled, for its promotion (its own backups are paused until then).",
    "CIS 2.4-2.11 (alerting), Cloud Monitoring alerting",
    Severity.HIGH,
    "leave alert policies enabled with the stack's notification channels (SiteMonitoring does this)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "alert [P1] Database full backup failed is disabled", "monitoring-full-failed",
              {"enabled": False}),
    Weakening("prod", "alert [P1] No successful full backup for 30 h is disabled", "monitoring-full-age",
              {"enabled": False}),
    Weakening("dr", "alert [P0] www.raptorflow.app/health failing is disabled", "monitoring-uptime-www-public",
              {"enabled": False}),
    Weakening("prod", "alert [P0] Backup bucket deleted or changed, or a backup key scheduled for destruction is "
              "disabled", "monitoring-backup-tampering", {"enabled": False}),
    Weakening("prod", "alert [P0] Backup bucket deleted or changed, or a backup key scheduled for destruction "
              "notifies nobody (no notification channel)", "monitoring-backup-tampering", {"notificationChannels": []}),
]
