"""Cloud KMS keys are protected from deletion by a stack change."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import CRYPTO_KEY, Weakening, resource_policy


def _check(args, violate):
    if args.resource_type == CRYPTO_KEY and not args.opts.protect:
        violate(f"key {args.name} is not protected (protect=True): losing it loses every backup it encrypts")


POLICY = resource_policy(
    "raptorflow-kms-key-deletion-protection",
    "Cloud KMS keys are protected from deletion by a stack change.",
    "CKV_GCP_82, kms-key-lifecycle",
    Severity.CRITICAL,
    "pass ResourceOptions(protect=True) to the key",
    _check,
)

WEAKENINGS = [
    Weakening("dr", "key user-files-replica-sink-key is not protected (protect=True): losing it loses every backup it "
              "encrypts", "user-files-replica-sink-key",
              protect=False),
]
