"""Backup buckets are protected from deletion: `protect` on, `force_destroy` off."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import Weakening, backup_bucket_policy


def _check(args, violate):
    if args.props.get("forceDestroy") is True:
        violate(f"backup bucket {args.name} has force_destroy on: `pulumi destroy` would delete its backups")
    if not args.opts.protect:
        violate(f"backup bucket {args.name} is not protected (protect=True)")


POLICY = backup_bucket_policy(
    "raptorflow-gcs-backup-bucket-deletion-protection",
    "Backup buckets are protected from deletion: `protect` on, `force_destroy` off.",
    "CKV_GCP_82, kms-key-lifecycle",
    Severity.CRITICAL,
    "pass ResourceOptions(protect=True) and force_destroy=False",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "backup bucket db-dumps-bucket is not protected (protect=True)", "db-dumps-bucket", protect=False),
    Weakening("dr", "backup bucket db-dumps-replica-sink-bucket has force_destroy on: `pulumi destroy` would delete "
              "its backups",
              "db-dumps-replica-sink-bucket", {"forceDestroy": True}),
]
