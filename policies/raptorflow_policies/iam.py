"""IAM rules: nothing public, no broad roles for job identities, backup writers create only."""

from __future__ import annotations

from pulumi_policy import Severity

from ._base import BUCKET, backup_role, is_iam_grant, members, of_type, resource_policy, stack_policy

PUBLIC = ("allUsers", "allAuthenticatedUsers")
PUBLIC_SERVICES = ("gcp:storage/", "gcp:kms/", "gcp:cloudrun/", "gcp:cloudrunv2/")
BROAD_ROLES = (
    "roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectAdmin",
    # What the console grants for event-driven replication: it could also delete objects and change IAM.
    "roles/storage.legacyBucketOwner",
)
CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
# The one custom role the program defines: enough for the transfer agent to set up change notifications on a
# source bucket (the same list as components.bucket_replica.SOURCE_NOTIFIER_PERMISSIONS; a test keeps them equal).
CUSTOM_ROLE_PERMISSIONS = ("storage.buckets.get", "storage.buckets.update")
# Roles that can write to a bucket; of these a backup writer may only hold objectCreator.
WRITE_ROLES = (
    "roles/storage.objectCreator", "roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin",
    "roles/storage.legacyBucketWriter", "roles/storage.legacyBucketOwner", "roles/storage.legacyObjectOwner",
    "roles/owner", "roles/editor",
)


def _no_public(args, violate):
    if not (is_iam_grant(args.resource_type) and args.resource_type.startswith(PUBLIC_SERVICES)):
        return
    for member in members(args.props):
        if member in PUBLIC:
            violate(f"{args.name} grants {args.props.get('role')} to {member}")


no_public_principals = resource_policy(
    "raptorflow-iam-no-public-principals",
    "No allUsers / allAuthenticatedUsers in bucket, KMS or Cloud Run IAM.",
    "CKV_GCP_28, GCP-0001, CIS 5.1, CKV_GCP_112, CKV2_GCP_6, CKV2_GCP_8, CKV_GCP_102",
    Severity.CRITICAL,
    "grant the role to a named service account or group instead",
    _no_public,
)


def _no_broad_roles(args, violate):
    if args.resource_type == CUSTOM_ROLE:
        extra = sorted(set(args.props.get("permissions") or ()) - set(CUSTOM_ROLE_PERMISSIONS))
        if extra:
            violate(f"{args.name} is a custom role with {', '.join(extra)} beyond what change notifications need")
        return
    if not is_iam_grant(args.resource_type) or args.props.get("role") not in BROAD_ROLES:
        return
    for member in members(args.props):
        if member.startswith("serviceAccount:"):
            violate(f"{args.name} grants {args.props['role']} to the job identity {member}")


no_broad_roles = resource_policy(
    "raptorflow-iam-no-broad-roles",
    "Job identities never hold owner, editor, storage.admin, storage.objectAdmin or legacyBucketOwner, and custom "
    "roles hold only what change notifications need.",
    "iam-no-broad-roles",
    Severity.CRITICAL,
    "grant the narrowest role the job needs (objectCreator to write backups, objectViewer to read)",
    _no_broad_roles,
)


def _writers_create_only(args, violate):
    backup_buckets = {b.props.get("name") for b in of_type(args.resources, BUCKET) if backup_role(b.props)}
    for grant in args.resources:
        if not is_iam_grant(grant.resource_type) or grant.props.get("bucket") not in backup_buckets:
            continue
        role = grant.props.get("role")
        if role in WRITE_ROLES and role != "roles/storage.objectCreator":
            for member in members(grant.props):
                violate(f"{member} holds {role} on backup bucket {grant.props['bucket']}: it could replace or "
                        "delete backups", grant.urn)


backup_writers_create_only = stack_policy(
    "raptorflow-gcs-backup-writer-create-only",
    "Whoever writes to a backup bucket holds only roles/storage.objectCreator there (no read, replace, delete).",
    "bucket-iam-least-privilege",
    Severity.HIGH,
    "grant roles/storage.objectCreator (plus roles/storage.legacyBucketReader where listing is needed)",
    _writers_create_only,
)

POLICIES = [no_public_principals, no_broad_roles, backup_writers_create_only]
