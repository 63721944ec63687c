"""Every part of the plan that can fail quietly has its alert: each checked job command, each copy, each uptime
check, and every backup bucket and key against tampering."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import (
    ALERT_POLICY,
    RUN_JOB,
    TRANSFER_JOB,
    UPTIME_CHECK,
    Command,
    Label,
    Weakening,
    backup_buckets,
    bucket_of,
    condition_text,
    get,
    job_command,
    labels,
    of_type,
    stack_policy,
    watched_jobs,
)

# What each backup-job command needs besides the backup rules' alerts (monitoring-backup-job-alerts).
COMMAND_ALERTS: dict[str, tuple[str, ...]] = {
    Command.RESTORE_CHECK: ("restore-check-failed",), Command.EXPORT_DNS: ("dns-export-failed", "backup-age"),
}


def _check(args, violate):
    alerts = of_type(args.resources, ALERT_POLICY)

    def kinds_watching(job: str) -> set[str]:
        return {str(labels(a.props).get(Label.ALERT)) for a in alerts if job in watched_jobs(condition_text(a.props))}

    for job in of_type(args.resources, RUN_JOB):
        name = job.props.get("name")
        for kind in COMMAND_ALERTS.get(job_command(job.props) or "", ()):
            if kind not in kinds_watching(name):
                violate(f"{job_command(job.props)} job {name} has no {kind} alert", job.urn)
    sinks = {bucket_of(get(j.props, f"{spec}.gcsDataSink.bucketName")) for j in of_type(args.resources, TRANSFER_JOB)
             for spec in ("transferSpec", "replicationSpec")} - {None}
    for kind in ("transfer-failed", "transfer-behind"):
        watched = {str(labels(a.props).get(Label.TARGET)) for a in alerts
                   if labels(a.props).get(Label.ALERT) == kind}
        if len(watched) < len(sinks):
            violate(f"the stack copies into {len(sinks)} buckets but has {kind} alerts for {len(watched)}")
    uptime_targets = {labels(a.props).get(Label.TARGET) for a in alerts
                      if labels(a.props).get(Label.ALERT) == "uptime"}
    checked = {labels(c.props).get(Label.TARGET): c for c in of_type(args.resources, UPTIME_CHECK)}
    for target, check in checked.items():
        if target not in uptime_targets:
            violate(f"uptime check {check.name} has no uptime alert ({Label.TARGET} {target})", check.urn)
    for target in sorted(t for t in uptime_targets - set(checked) if t):
        violate(f"the uptime alert for {target} watches no uptime check of the stack")
    paths = {str(get(c.props, "httpCheck.path")) for c in checked.values()}
    if len(paths) > 1:
        violate(f"uptime checks probe different paths ({', '.join(sorted(paths))}): every site serves the same "
                "health endpoint")
    tampering = " ".join(condition_text(a.props) for a in alerts
                         if labels(a.props).get(Label.ALERT) == "backup-tampering")
    for bucket in sorted(backup_buckets(args.resources)):
        if f'"{bucket}"' not in tampering:
            violate(f"backup bucket {bucket} is watched by no backup-tampering alert (delete, update, key destruction)")


POLICY = stack_policy(
    "raptorflow-monitoring-watches-every-part",
    "The restore check and the DNS export have their failure (and age) alerts, every bucket a transfer fills has "
    "transfer-failed and transfer-behind alerts, every uptime check has its alert and every uptime alert its check, "
    "and every backup bucket is watched for tampering.",
    "CIS 2.x (log metric alerts), DR plan monitoring",
    Severity.HIGH,
    "give the stack a `monitoring` section: SiteMonitoring alerts on everything it is handed",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "restore-check job db-backup-restore-check has no restore-check-failed alert",
              removed=("monitoring-restore-check-failed",)),
    Weakening("dr", "the stack copies into 2 buckets but has transfer-behind alerts for 1",
              removed=("monitoring-transfer-user-files-behind",)),
    Weakening("prod", f"uptime check monitoring-check-app-us-raptorflow-app has no uptime alert ({Label.TARGET} "
              "app-us-raptorflow-app)", removed=("monitoring-uptime-app-us-raptorflow-app",)),
    Weakening("prod", "backup bucket raptorflow-prod-db-dumps is watched by no backup-tampering alert (delete, "
              "update, key destruction)", removed=("monitoring-backup-tampering",)),
    Weakening("dr", "uptime checks probe different paths (/health, /robots.txt): every site serves the same health "
              "endpoint", "monitoring-check-www-public", {"httpCheck.path": "/robots.txt"}),
]
