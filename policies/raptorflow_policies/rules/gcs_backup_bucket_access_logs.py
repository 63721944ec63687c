"""Backup buckets write access logs to a different bucket."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import DELETE, Weakening, backup_bucket_policy, get


def _check(args, violate):
    target = get(args.props, "logging.logBucket")
    if not target:
        violate(f"backup bucket {args.name} writes no access logs")
    elif target == args.props.get("name"):
        violate(f"backup bucket {args.name} logs into itself")


POLICY = backup_bucket_policy(
    "raptorflow-gcs-backup-bucket-access-logs",
    "Backup buckets write access logs to a different bucket.",
    "CKV_GCP_62, CKV_GCP_63, GCP-0077",
    Severity.MEDIUM,
    "set logging.log_bucket to a separate log bucket (BackupBucket creates one)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "backup bucket db-dumps-bucket writes no access logs",
              "db-dumps-bucket", {"logging": DELETE}),
    Weakening("prod", "backup bucket db-dumps-bucket logs into itself",
              "db-dumps-bucket", {"logging.logBucket": "raptorflow-prod-db-dumps"}),
]
