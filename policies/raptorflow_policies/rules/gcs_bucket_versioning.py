"""Buckets without a retention policy keep versions (the two are exclusive, so never both are demanded)."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import DELETE, Weakening, buckets_only, get, resource_policy


def _check(args, violate):
    if get(args.props, "retentionPolicy.retentionPeriod"):
        return  # a retention policy already guards every object; versioning is exclusive with it
    if get(args.props, "versioning.enabled") is not True:
        violate(f"bucket {args.name} has neither a retention policy nor versioning")


POLICY = resource_policy(
    "raptorflow-gcs-bucket-versioning",
    "Buckets without a retention policy keep versions (the two are exclusive, so never both are demanded).",
    "CKV_GCP_78, GCP-0078",
    Severity.MEDIUM,
    "enable versioning, or give the bucket a retention policy",
    buckets_only(_check),
)

WEAKENINGS = [
    Weakening("prod", "bucket db-dumps-logs has neither a retention policy nor versioning", "db-dumps-logs", {"versioning": DELETE}),
]
