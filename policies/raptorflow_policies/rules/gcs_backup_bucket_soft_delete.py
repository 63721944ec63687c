"""Soft delete stays on for backup buckets, at least the plan's minimum."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import SECONDS_PER_DAY, SOFT_DELETE_DAYS_MAX, SOFT_DELETE_DAYS_MIN

from .._base import Weakening, backup_bucket_policy, get, number


def _check(args, violate):
    seconds = number(get(args.props, "softDeletePolicy.retentionDurationSeconds"))
    if seconds is None or seconds < SOFT_DELETE_DAYS_MIN * SECONDS_PER_DAY:
        shown = "unset" if seconds is None else f"{seconds / SECONDS_PER_DAY:g} days"
        violate(f"backup bucket {args.name} keeps deleted objects {shown}; "
                f"at least {SOFT_DELETE_DAYS_MIN} days are required")
    elif seconds > SOFT_DELETE_DAYS_MAX * SECONDS_PER_DAY:
        violate(f"backup bucket {args.name} keeps deleted objects {seconds / SECONDS_PER_DAY:g} days; Cloud "
                f"Storage accepts at most {SOFT_DELETE_DAYS_MAX}")


POLICY = backup_bucket_policy(
    "raptorflow-gcs-backup-bucket-soft-delete",
    f"Soft delete stays on for backup buckets, {SOFT_DELETE_DAYS_MIN}-{SOFT_DELETE_DAYS_MAX} days (the API's "
    "range ends there).",
    "GCS soft-delete guidance",
    Severity.MEDIUM,
    f"set softDeleteDays to {SOFT_DELETE_DAYS_MIN}-{SOFT_DELETE_DAYS_MAX} in the stack config",
    _check,
)

WEAKENINGS = [
    Weakening("prod", f"backup bucket db-dumps-bucket keeps deleted objects 0 days; at least {SOFT_DELETE_DAYS_MIN} days "
              "are required",
              "db-dumps-bucket", {"softDeletePolicy.retentionDurationSeconds": 0}),
    Weakening("prod", "backup bucket db-dumps-bucket keeps deleted objects 700 days; Cloud Storage accepts at most "
              f"{SOFT_DELETE_DAYS_MAX}",
              "db-dumps-bucket", {"softDeletePolicy.retentionDurationSeconds": 60480000}),
]
