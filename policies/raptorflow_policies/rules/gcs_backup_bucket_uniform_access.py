"""Buckets use uniform bucket-level access, so no object ACL can open an object."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import Weakening, buckets_only, resource_policy


def _check(args, violate):
    if args.props.get("uniformBucketLevelAccess") is not True:
        violate(f"bucket {args.name} does not enforce uniform bucket-level access")


POLICY = resource_policy(
    "raptorflow-gcs-backup-bucket-uniform-access",
    "Buckets use uniform bucket-level access, so no object ACL can open an object.",
    "CKV_GCP_29, GCP-0002, CIS 5.2",
    Severity.HIGH,
    "set uniform_bucket_level_access=True on the bucket",
    buckets_only(_check),
)

WEAKENINGS = [
    Weakening("prod", "bucket db-dumps-bucket does not enforce uniform bucket-level access",
              "db-dumps-bucket", {"uniformBucketLevelAccess": False}),
]
