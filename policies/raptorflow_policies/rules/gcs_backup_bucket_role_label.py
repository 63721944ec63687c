"""A backup bucket's `backup-role` label says what the plan does with it."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import BUCKET, DELETE, Weakening, backup_buckets, labels, of_type, stack_policy


def _check(args, violate):
    roles = backup_buckets(args.resources)
    for bucket in of_type(args.resources, BUCKET):
        role = roles.get(bucket.props.get("name"))
        label = labels(bucket.props).get("backup-role")
        if role and label != role:
            violate(f"bucket {bucket.props.get('name')} holds {role} backups (the plan writes, copies or declares them "
                    f"there) but its backup-role label is {label or 'missing'}", bucket.urn)


POLICY = stack_policy(
    "raptorflow-gcs-backup-bucket-role-label",
    "A bucket the plan writes backups to, copies backups into or declares a backup bucket carries the matching "
    "`backup-role` label: the rules read the plan, and the label must agree with it.",
    "resource-labels",
    Severity.MEDIUM,
    "keep the backup-role label BackupBucket sets (database-dumps or user-files)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "bucket raptorflow-prod-db-dumps holds database-dumps backups (the plan writes, copies or "
              "declares them there) but its backup-role label is missing", "db-dumps-bucket",
              {"labels.backup-role": DELETE}),
    Weakening("dr", "bucket raptorflow-dr-user-files-replica holds user-files backups (the plan writes, copies or "
              "declares them there) but its backup-role label is database-dumps", "user-files-replica-sink-bucket",
              {"labels.backup-role": "database-dumps"}),
]
