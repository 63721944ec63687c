"""Public access prevention is `enforced` on every bucket (unset fails)."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import DELETE, Weakening, buckets_only, resource_policy


def _check(args, violate):
    if args.props.get("publicAccessPrevention") != "enforced":
        violate(f"bucket {args.name} has public access prevention "
                f"'{args.props.get('publicAccessPrevention', 'unset')}', not 'enforced'")


POLICY = resource_policy(
    "raptorflow-gcs-bucket-enforce-public-access-prevention",
    "Public access prevention is `enforced` on every bucket (unset fails).",
    "CKV_GCP_114, gcp-storage-bucket-enforce-public-access-prevention",
    Severity.CRITICAL,
    'set public_access_prevention="enforced" on the bucket',
    buckets_only(_check),
)

WEAKENINGS = [
    Weakening("prod", "bucket db-dumps-bucket has public access prevention 'inherited', not 'enforced'",
              "db-dumps-bucket", {"publicAccessPrevention": "inherited"}),
    Weakening("dr", "bucket db-dumps-replica-sink-logs has public access prevention 'unset', not 'enforced'",
              "db-dumps-replica-sink-logs", {"publicAccessPrevention": DELETE}),
]
