"""Cloud KMS rules: keys rotate, and keys that encrypt backups cannot be deleted by a stack change."""

from __future__ import annotations

from pulumi_policy import Severity

from ._base import CRYPTO_KEY, SECONDS_PER_DAY, duration_seconds, resource_policy

ROTATION_CONFIG = {
    "maxRotationDays": {"type": "integer", "description": "Longest allowed rotation period, days.", "default": 90}
}


def _rotation(args, violate):
    if args.resource_type != CRYPTO_KEY:
        return
    limit = int(args.get_config().get("maxRotationDays", 90))
    seconds = duration_seconds(args.props.get("rotationPeriod"))
    if seconds is None:
        violate(f"key {args.name} never rotates")
    elif seconds > limit * SECONDS_PER_DAY:
        violate(f"key {args.name} rotates every {seconds / SECONDS_PER_DAY:g} days; at most {limit} are allowed")


key_rotation = resource_policy(
    "raptorflow-kms-key-rotation",
    "Cloud KMS keys rotate at least every 90 days.",
    "CKV_GCP_43, GCP-0065, CIS 1.10",
    Severity.HIGH,
    "set rotation_period (kms.rotationDays in the stack config) to 90 days or less",
    _rotation,
    config=ROTATION_CONFIG,
)


def _protected(args, violate):
    if args.resource_type == CRYPTO_KEY and not args.opts.protect:
        violate(f"key {args.name} is not protected (protect=True): losing it loses every backup it encrypts")


key_deletion_protection = resource_policy(
    "raptorflow-kms-key-deletion-protection",
    "Cloud KMS keys are protected from deletion by a stack change.",
    "CKV_GCP_82, kms-key-lifecycle",
    Severity.CRITICAL,
    "pass ResourceOptions(protect=True) to the key",
    _protected,
)

POLICIES = [key_rotation, key_deletion_protection]
