"""Job identities never hold broad roles, and custom roles hold only what their purpose needs."""

from __future__ import annotations

from pulumi_policy import Severity

from core.roles import CUSTOM_ROLES, TRANSFER_SOURCE_NOTIFIER

from .._base import ResourceType, Weakening, is_iam_grant, members, resource_policy

BROAD_ROLES = (
    "roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectAdmin",
    # What the console grants for event-driven replication: it could also delete objects and change IAM.
    "roles/storage.legacyBucketOwner",
    # Admin roles of the services the plan uses: they can delete what they administer and change its IAM.
    "roles/secretmanager.admin", "roles/cloudkms.admin", "roles/run.admin",
)
CUSTOM_ROLE = ResourceType.CUSTOM_ROLE
# The custom roles the program defines (core.roles), each holding exactly what its one purpose needs.
CUSTOM_ROLE_PERMISSIONS = TRANSFER_SOURCE_NOTIFIER.permissions


def _check(args, violate):
    if args.resource_type == CUSTOM_ROLE:
        role_id = str(args.props.get("roleId") or "")
        role = next((r for r in CUSTOM_ROLES if r.names(role_id)), TRANSFER_SOURCE_NOTIFIER)
        extra = sorted(set(args.props.get("permissions") or ()) - set(role.permissions))
        if extra:
            violate(f"{args.name} is a custom role with {', '.join(extra)} beyond what it is for ({role.purpose})")
        return
    if not is_iam_grant(args.resource_type) or args.props.get("role") not in BROAD_ROLES:
        return
    for member in members(args.props):
        if member.startswith("serviceAccount:"):
            violate(f"{args.name} grants {args.props['role']} to the job identity {member}")


POLICY = resource_policy(
    "raptorflow-iam-no-broad-roles",
    "Job identities never hold owner, editor, storage.admin, storage.objectAdmin or legacyBucketOwner, and custom "
    "roles hold only what their purpose needs.",
    "iam-no-broad-roles",
    Severity.CRITICAL,
    "grant the narrowest role the job needs (objectCreator to write backups, objectViewer to read)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "db-backup-writer-create-only grants roles/storage.objectAdmin to the job identity "
              "serviceAccount:db-backup-writer@raptorflow-prod.iam.gserviceaccount.com",
              "db-backup-writer-create-only", {"role": "roles/storage.objectAdmin"}),
    Weakening("prod", "transfer-source-notifier is a custom role with storage.objects.delete beyond what it is for "
              "(change notifications)",
              "transfer-source-notifier", {"permissions": ["storage.buckets.update", "storage.objects.delete"]}),
    Weakening("dr", "user-files-replica-source-notifier grants roles/storage.legacyBucketOwner to the job identity "
              "serviceAccount:project-559701368449@storage-transfer-service.iam.gserviceaccount.com",
              "user-files-replica-source-notifier", {"role": "roles/storage.legacyBucketOwner"}),
]
