"""Backup buckets encrypt with a customer-managed Cloud KMS key."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import DELETE, Weakening, backup_bucket_policy, get


def _check(args, violate):
    if not get(args.props, "encryption.defaultKmsKeyName"):
        violate(f"backup bucket {args.name} has no customer-managed encryption key")


POLICY = backup_bucket_policy(
    "raptorflow-gcs-backup-bucket-cmek",
    "Backup buckets encrypt with a customer-managed Cloud KMS key.",
    "GCP-0066, bucket-customer-managed-kms",
    Severity.HIGH,
    "set encryption.default_kms_key_name to the bucket's Cloud KMS key (BackupBucket does this)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "backup bucket db-dumps-bucket has no customer-managed encryption key",
              "db-dumps-bucket", {"encryption": DELETE}),
]
