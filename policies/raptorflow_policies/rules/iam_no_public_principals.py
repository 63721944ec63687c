"""No allUsers / allAuthenticatedUsers in bucket, KMS or Cloud Run IAM."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import Weakening, is_iam_grant, members, resource_policy

PUBLIC = ("allUsers", "allAuthenticatedUsers")
PUBLIC_SERVICES = ("gcp:storage/", "gcp:kms/", "gcp:cloudrun/", "gcp:cloudrunv2/")


def _check(args, violate):
    if not (is_iam_grant(args.resource_type) and args.resource_type.startswith(PUBLIC_SERVICES)):
        return
    for member in members(args.props):
        if member in PUBLIC:
            violate(f"{args.name} grants {args.props.get('role')} to {member}")


POLICY = resource_policy(
    "raptorflow-iam-no-public-principals",
    "No allUsers / allAuthenticatedUsers in bucket, KMS or Cloud Run IAM.",
    "CKV_GCP_28, GCP-0001, CIS 5.1, CKV_GCP_112, CKV2_GCP_6, CKV2_GCP_8, CKV_GCP_102",
    Severity.CRITICAL,
    "grant the role to a named service account or group instead",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "db-backup-checker-read-only grants roles/storage.objectViewer to allUsers",
              "db-backup-checker-read-only", {"member": "allUsers"}),
    Weakening("dr", "db-backup-full-scheduler-may-run grants roles/run.invoker to allAuthenticatedUsers",
              "db-backup-full-scheduler-may-run", {"member": "allAuthenticatedUsers"}),
]
