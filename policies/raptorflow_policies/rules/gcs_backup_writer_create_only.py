"""Whoever writes to a backup bucket holds only roles/storage.objectCreator there."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import (
    PROJECT_GRANTS,
    STORAGE_ACLS,
    ResourceType,
    Weakening,
    acl_entries,
    backup_buckets,
    bucket_of,
    grants,
    is_iam_grant,
    stack_policy,
)

# Roles that can write to a bucket; of these a backup writer may only hold objectCreator.
WRITE_ROLES = (
    "roles/storage.objectCreator", "roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin",
    "roles/storage.legacyBucketWriter", "roles/storage.legacyBucketOwner", "roles/storage.legacyObjectOwner",
    "roles/owner", "roles/editor",
)
ACL_WRITE_ROLES = ("WRITER", "OWNER", "FULL_CONTROL")


def _check(args, violate):
    protected = backup_buckets(args.resources)
    for grant in args.resources:
        bucket = bucket_of(grant.props.get("bucket"))
        if is_iam_grant(grant.resource_type) and bucket in protected:
            where = f"on backup bucket {bucket}"
        elif grant.resource_type in PROJECT_GRANTS and protected:
            where = f"on project {grant.props.get('project')}, so on every backup bucket in it"
        elif grant.resource_type in STORAGE_ACLS and bucket in protected:
            for role, entity in acl_entries(grant.props):
                if role in ACL_WRITE_ROLES:
                    violate(f"{entity} holds {role} {f'on backup bucket {bucket}'} through an ACL: it could replace or "
                            "delete backups", grant.urn)
            continue
        else:
            continue
        for role, member in grants(grant.props):
            if role in WRITE_ROLES and role != "roles/storage.objectCreator":
                violate(f"{member} holds {role} {where}: it could replace or delete backups", grant.urn)


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
    Weakening("prod", "serviceAccount:db-backup-writer@raptorflow-prod.iam.gserviceaccount.com holds "
              "roles/storage.objectAdmin on backup bucket raptorflow-prod-db-dumps: it could replace or delete backups",
              "db-backup-writer-create-only", {"bucket": "b/raptorflow-prod-db-dumps", "role": "roles/storage.objectAdmin"}),
    Weakening("prod", "serviceAccount:db-backup-writer@raptorflow-prod.iam.gserviceaccount.com holds "
              "roles/storage.objectUser on project raptorflow-prod, so on every backup bucket in it: it could replace "
              "or delete backups",
              added=((ResourceType.PROJECT_IAM_MEMBER, "writer-project-wide",
                      {"project": "raptorflow-prod", "role": "roles/storage.objectUser",
                       "member": "serviceAccount:db-backup-writer@raptorflow-prod.iam.gserviceaccount.com"}),)),
]
