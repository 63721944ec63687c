"""Backup buckets keep every object at least the plan's retention, per backup role."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import RETENTION_DAYS, SECONDS_PER_DAY

from .._base import DELETE, Weakening, backup_bucket_policy, get, number

CONFIG = {
    "minRetentionDays": {
        "type": "object",
        "description": "Minimum retention per backup-role label, in days.",
        "default": RETENTION_DAYS,
    }
}


def _check(args, violate):
    role = args.role
    minimum = int(args.get_config().get("minRetentionDays", RETENTION_DAYS)[role])
    period = get(args.props, "retentionPolicy.retentionPeriod")
    seconds = number(period) or 0.0
    if seconds < minimum * SECONDS_PER_DAY:
        violate(f"backup bucket {args.name} ({role}) keeps objects {seconds / SECONDS_PER_DAY:g} days; "
                f"at least {minimum} days are required")


POLICY = backup_bucket_policy(
    "raptorflow-gcs-backup-bucket-retention",
    f"Backup buckets keep every object at least the configured retention ({RETENTION_DAYS['database-dumps']} days "
    f"database dumps, {RETENTION_DAYS['user-files']} user files).",
    "CKV2_GCP_4, CIS 2.3",
    Severity.HIGH,
    "raise retentionDays in the stack config to at least the minimum",
    _check,
    config=CONFIG,
)

WEAKENINGS = [
    Weakening("prod", "backup bucket db-dumps-bucket (database-dumps) keeps objects 7 days; at least 30 days are "
              "required",
              "db-dumps-bucket", {"retentionPolicy.retentionPeriod": "604800"}),
    Weakening("dr", "backup bucket user-files-replica-sink-bucket (user-files) keeps objects 30 days; at least 90 "
              "days are required",
              "user-files-replica-sink-bucket", {"retentionPolicy.retentionPeriod": "2592000"}),
    Weakening("prod", "backup bucket db-dumps-bucket (database-dumps) keeps objects 1 days; at least 30 days are "
              "required", "db-dumps-bucket",
              {"labels.backup-role": DELETE, "retentionPolicy.retentionPeriod": "86400"}),
]
