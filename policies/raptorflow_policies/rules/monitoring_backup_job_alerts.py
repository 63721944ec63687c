"""Every backup job has a failure alert and a backup-age alert, each with a notification channel."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import (
    ALERT_POLICY,
    RUN_JOB,
    Command,
    Label,
    Weakening,
    condition_text,
    job_command,
    labels,
    of_type,
    stack_policy,
    watched_jobs,
)


def _check(args, violate):
    alerts = of_type(args.resources, ALERT_POLICY)
    for job in of_type(args.resources, RUN_JOB):
        if job_command(job.props) != Command.BACKUP:
            continue
        name = job.props.get("name")
        # A standby's age alert is disabled until promotion; it exists and notifies once enabled, which is the rule.
        watching = [a for a in alerts if name in watched_jobs(condition_text(a.props)) and a.props.get("notificationChannels")]
        kinds = {labels(a.props).get(Label.ALERT) for a in watching}
        for needed in ("backup-failed", "backup-age"):
            if needed not in kinds:
                violate(f"backup job {name} has no {needed} alert with a notification channel", job.urn)


POLICY = stack_policy(
    "raptorflow-monitoring-backup-job-alerts",
    "Every backup job has a failure alert and a backup-age alert, each with a notification channel.",
    "Cloud Monitoring metric-absence guidance",
    Severity.HIGH,
    "give the stack a `monitoring` section; SiteMonitoring adds both alerts for every backup job it is handed",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "backup job db-backup-full has no backup-age alert with a notification channel",
              removed=("monitoring-full-age",)),
    Weakening("dr", "backup job db-backup-schema has no backup-failed alert with a notification channel",
              "monitoring-schema-failed", {"notificationChannels": []}),
]
