"""A backup bucket's `backup-role` label says what the plan does with it."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import (
    BUCKET,
    DATABASE_DUMPS,
    DELETE,
    USER_FILES,
    Label,
    Weakening,
    backup_buckets,
    labels,
    of_type,
    stack_policy,
)


def _check(args, violate):
    roles = backup_buckets(args.resources)
    for bucket in of_type(args.resources, BUCKET):
        role = roles.get(bucket.props.get("name"))
        label = labels(bucket.props).get(Label.BACKUP_ROLE)
        if role and label != role:
            violate(f"bucket {bucket.props.get('name')} holds {role} backups (the plan writes, copies or declares them "
                    f"there) but its {Label.BACKUP_ROLE} label is {label or 'missing'}", bucket.urn)


POLICY = stack_policy(
    "raptorflow-gcs-backup-bucket-role-label",
    "A bucket the plan writes backups to, copies backups into or declares a backup bucket carries the matching "
    f"`{Label.BACKUP_ROLE}` label: the rules read the plan, and the label must agree with it.",
    "resource-labels",
    Severity.MEDIUM,
    f"keep the {Label.BACKUP_ROLE} label BackupBucket sets ({DATABASE_DUMPS.label} or {USER_FILES.label})",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "bucket raptorflow-prod-db-dumps holds database-dumps backups (the plan writes, copies or "
              f"declares them there) but its {Label.BACKUP_ROLE} label is missing", "db-dumps-bucket",
              {f"labels.{Label.BACKUP_ROLE}": DELETE}),
    Weakening("dr", "bucket raptorflow-dr-user-files-replica holds user-files backups (the plan writes, copies or "
              f"declares them there) but its {Label.BACKUP_ROLE} label is database-dumps",
              "user-files-replica-sink-bucket", {f"labels.{Label.BACKUP_ROLE}": DATABASE_DUMPS.label}),
]
