"""No allUsers / allAuthenticatedUsers in any IAM member, binding or policy of any service, or in a Cloud Storage
ACL."""

from __future__ import annotations

import json

from pulumi_policy import Severity

from .._base import STORAGE_ACLS, ResourceType, Weakening, acl_entries, grants, is_iam_grant, resource_policy

PUBLIC = ("allUsers", "allAuthenticatedUsers")


def _check(args, violate):
    if args.resource_type in STORAGE_ACLS:
        for role, entity in acl_entries(args.props):
            if entity in PUBLIC:
                violate(f"{args.name} grants {role} to {entity} through a Cloud Storage ACL")
        return
    if not is_iam_grant(args.resource_type):
        return
    for role, member in grants(args.props):
        if member in PUBLIC:
            violate(f"{args.name} grants {role} to {member}")


POLICY = resource_policy(
    "raptorflow-iam-no-public-principals",
    "No allUsers / allAuthenticatedUsers in any IAM member, binding or policy (buckets, keys, Cloud Run, secrets, "
    "service accounts, ...) or in Cloud Storage ACLs (access controls, ACLs, default object ACLs, predefined "
    "public ACLs).",
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
    Weakening("prod", "public-acl grants READER to allUsers through a Cloud Storage ACL",
              added=((ResourceType.BUCKET_ACCESS_CONTROL, "public-acl",
                      {"bucket": "raptorflow-prod-db-dumps", "entity": "allUsers", "role": "READER"}),)),
    Weakening("prod", "public-default-acl grants READER to allUsers through a Cloud Storage ACL",
              added=((ResourceType.DEFAULT_OBJECT_ACCESS_CONTROL, "public-default-acl",
                      {"bucket": "raptorflow-prod-db-dumps", "entity": "allUsers", "role": "READER"}),)),
    Weakening("prod", "public-bucket-acl grants READER to allAuthenticatedUsers through a Cloud Storage ACL",
              added=((ResourceType.BUCKET_ACL, "public-bucket-acl",
                      {"bucket": "raptorflow-prod-db-dumps", "roleEntities": ["READER:allAuthenticatedUsers"]}),)),
    Weakening("prod", "public-bucket-policy grants roles/storage.objectViewer to allUsers",
              added=((ResourceType.BUCKET_IAM_POLICY, "public-bucket-policy",
                      {"bucket": "b/raptorflow-prod-db-dumps", "policyData": json.dumps(
                          {"bindings": [{"role": "roles/storage.objectViewer", "members": ["allUsers"]}]})}),)),
    Weakening("prod", "public-key-policy grants roles/cloudkms.cryptoKeyDecrypter to allAuthenticatedUsers",
              added=((ResourceType.CRYPTO_KEY_IAM_POLICY, "public-key-policy",
                      {"cryptoKeyId": "projects/raptorflow-prod/locations/us-central1/keyRings/"
                                      "raptorflow-prod-db-dumps-ring/cryptoKeys/raptorflow-prod-db-dumps-key",
                       "policyData": json.dumps({"bindings": [{"role": "roles/cloudkms.cryptoKeyDecrypter",
                                                               "members": ["allAuthenticatedUsers"]}]})}),)),
    Weakening("prod", "public-secret grants roles/secretmanager.secretAccessor to allAuthenticatedUsers",
              added=((ResourceType.SECRET_IAM_MEMBER, "public-secret",
                      {"secretId": "projects/raptorflow-prod/secrets/db-backup-database-url",
                       "role": "roles/secretmanager.secretAccessor", "member": "allAuthenticatedUsers"}),)),
]
