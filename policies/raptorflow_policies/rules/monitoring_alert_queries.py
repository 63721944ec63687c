"""What each alert watches is what its kind must watch: a failure alert counts failed executions of a job, an age
alert counts successes over the schedule's gap plus the margin, the success metric counts only successes, and the
tampering alert matches the methods that delete or change backups."""

from __future__ import annotations

import re

from pulumi_policy import Severity

from core.limits import BACKUP_AGE_MARGIN_HOURS, MAX_RUN_INTERVAL_HOURS

from .._base import (
    ALERT_POLICY,
    BACKUP_SUCCESS_METRIC,
    SUCCESS_LINES,
    BackupKind,
    Command,
    Label,
    ResourceType,
    Weakening,
    condition_text,
    get,
    job_name_match,
    labels,
    of_type,
    run_kind,
    stack_policy,
)

METRIC = ResourceType.LOG_METRIC
CHANNEL = ResourceType.NOTIFICATION_CHANNEL
FAILED = ('metric.type="run.googleapis.com/job/completed_execution_count"', 'metric.labels.result="failed"')
SUCCESS = SUCCESS_LINES
TAMPERING = ('"storage.buckets.delete"', '"storage.buckets.update"', '"DestroyCryptoKeyVersion"')
LONGEST_WINDOW_HOURS = max(MAX_RUN_INTERVAL_HOURS[run_kind(Command.BACKUP, BackupKind.FULL)],
                           MAX_RUN_INTERVAL_HOURS[run_kind(Command.EXPORT_DNS)], 24) + BACKUP_AGE_MARGIN_HOURS


def _check(args, violate):
    for metric in of_type(args.resources, METRIC):
        text = str(metric.props.get("filter") or "")
        if metric.props.get("name", "").endswith("_success") and not all(part in text for part in SUCCESS):
            violate(f"log-based metric {metric.props.get('name')} counts lines that are not the job's successes "
                    f"({text[:120]})", metric.urn)
    for channel in of_type(args.resources, CHANNEL):
        if channel.props.get("enabled") is False:
            violate(f"notification channel {channel.name} is disabled: alerts sent to it reach nobody", channel.urn)
    for alert in of_type(args.resources, ALERT_POLICY):
        kind, text = labels(alert.props).get(Label.ALERT), condition_text(alert.props)
        name = alert.props.get("displayName") or alert.name
        trigger = get((alert.props.get("conditions") or [{}])[0], "conditionThreshold.trigger")
        if trigger and (trigger.get("count") not in (None, 1) or trigger.get("percent") not in (None, 0)):
            violate(f"alert {name} waits for {trigger} series instead of any one", alert.urn)
        if kind in ("backup-failed", "restore-check-failed", "dns-export-failed") and not all(p in text for p in FAILED):
            violate(f"alert {name} does not count failed executions of its job", alert.urn)
        if kind == "backup-tampering" and not all(p in text for p in TAMPERING):
            violate(f"alert {name} misses a method that deletes or changes backups", alert.urn)
        if kind in ("backup-age", "transfer-behind"):
            window = re.search(r"\[(\d+)h\]", text)
            if not window or int(window[1]) > LONGEST_WINDOW_HOURS:
                violate(f"alert {name} looks back {window[0] if window else 'an unreadable window'}; a schedule's "
                        f"gap plus the margin is at most {LONGEST_WINDOW_HOURS} h", alert.urn)


POLICY = stack_policy(
    "raptorflow-monitoring-alert-queries",
    "Alert conditions watch what their kind must: failed executions for failure alerts, successes within the "
    "schedule's gap plus the margin for age alerts, every delete/update/destroy method for tampering; the success "
    "metric counts only successes; no channel is disabled.",
    "CIS 2.x (log metric filters and alerts)",
    Severity.HIGH,
    "keep the alerts and metrics SiteMonitoring builds; change their figures in core/alerts.py and core/limits.py",
    _check,
)

_EVENTS_ONLY = f'resource.type="cloud_run_job" AND {SUCCESS_LINES[0]}'
"""A filter that counts every line of the job, failures too."""
WEAKENINGS = [
    Weakening("prod", "alert [P1] Database full backup failed does not count failed executions of its job",
              "monitoring-full-failed", {"conditions.0.conditionThreshold.filter":
                                         'metric.type="run.googleapis.com/job/completed_execution_count" AND '
                                         f'resource.labels.{job_name_match("db-backup-full")} AND '
                                         'metric.labels.result="never"'}),
    Weakening("prod", f"log-based metric {BACKUP_SUCCESS_METRIC} counts lines that are not the job's successes "
              f"({_EVENTS_ONLY})", "monitoring-backup-success", {"filter": _EVENTS_ONLY}),
    Weakening("prod", "notification channel monitoring-slack is disabled: alerts sent to it reach nobody",
              "monitoring-slack", {"enabled": False}),
]
