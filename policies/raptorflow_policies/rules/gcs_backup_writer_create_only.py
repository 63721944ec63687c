"""Whoever writes to a backup bucket holds only roles/storage.objectCreator there."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import BUCKET, Weakening, backup_role, is_iam_grant, members, of_type, stack_policy

# Roles that can write to a bucket; of these a backup writer may only hold objectCreator.
WRITE_ROLES = (
    "roles/storage.objectCreator", "roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin",
    "roles/storage.legacyBucketWriter", "roles/storage.legacyBucketOwner", "roles/storage.legacyObjectOwner",
    "roles/owner", "roles/editor",
)


def _check(args, violate):
    backup_buckets = {b.props.get("name") for b in of_type(args.resources, BUCKET) if backup_role(b.props)}
    for grant in args.resources:
        if not is_iam_grant(grant.resource_type) or grant.props.get("bucket") not in backup_buckets:
            continue
        role = grant.props.get("role")
        if role in WRITE_ROLES and role != "roles/storage.objectCreator":
            for member in members(grant.props):
                violate(f"{member} holds {role} on backup bucket {grant.props['bucket']}: it could replace or "
                        "delete backups", grant.urn)


POLICY = stack_policy(
    "raptorflow-gcs-backup-writer-create-only",
    "Whoever writes to a backup bucket holds only roles/storage.objectCreator there (no read, replace, delete).",
    "bucket-iam-least-privilege",
    Severity.HIGH,
    "grant roles/storage.objectCreator (plus roles/storage.legacyBucketReader where listing is needed)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "serviceAccount:db-backup-writer@raptorflow-prod.iam.gserviceaccount.com holds "
              "roles/storage.objectUser on backup bucket raptorflow-prod-db-dumps: it could replace or delete backups",
              "db-backup-writer-create-only", {"role": "roles/storage.objectUser"}),
]
