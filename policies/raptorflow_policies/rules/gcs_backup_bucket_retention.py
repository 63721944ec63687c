"""Backup buckets keep every object at least the plan's retention, per backup role."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import RETENTION_DAYS, SECONDS_PER_DAY

from .._base import DATABASE_DUMPS, DELETE, USER_FILES, Label, Weakening, backup_bucket_policy, get, number

CONFIG = {
    "minRetentionDays": {
        "type": "object",
        "description": f"Minimum retention per {Label.BACKUP_ROLE} label, in days.",
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
    f"Backup buckets keep every object at least the configured retention ({RETENTION_DAYS[DATABASE_DUMPS.label]} "
    f"days database dumps, {RETENTION_DAYS[USER_FILES.label]} user files).",
    "CKV2_GCP_4, CIS 2.3",
    Severity.HIGH,
    "raise retentionDays in the stack config to at least the minimum",
    _check,
    config=CONFIG,
)

_DUMPS_DAYS, _FILES_DAYS = RETENTION_DAYS[DATABASE_DUMPS.label], RETENTION_DAYS[USER_FILES.label]
WEAKENINGS = [
    Weakening("prod", f"backup bucket db-dumps-bucket (database-dumps) keeps objects 7 days; at least {_DUMPS_DAYS} "
              "days are required",
              "db-dumps-bucket", {"retentionPolicy.retentionPeriod": "604800"}),
    Weakening("dr", f"backup bucket user-files-replica-sink-bucket (user-files) keeps objects 30 days; at least "
              f"{_FILES_DAYS} days are required",
              "user-files-replica-sink-bucket", {"retentionPolicy.retentionPeriod": "2592000"}),
    Weakening("prod", f"backup bucket db-dumps-bucket (database-dumps) keeps objects 1 days; at least {_DUMPS_DAYS} "
              "days are required", "db-dumps-bucket",
              {f"labels.{Label.BACKUP_ROLE}": DELETE, "retentionPolicy.retentionPeriod": "86400"}),
]
