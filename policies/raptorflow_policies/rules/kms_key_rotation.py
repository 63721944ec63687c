"""Cloud KMS keys rotate at least as often as the plan requires."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import KMS_ROTATION_DAYS_MAX, SECONDS_PER_DAY

from .._base import CRYPTO_KEY, DELETE, Weakening, duration_seconds, resource_policy

CONFIG = {
    "maxRotationDays": {"type": "integer", "description": "Longest allowed rotation period, days.",
                        "default": KMS_ROTATION_DAYS_MAX}
}


def _check(args, violate):
    if args.resource_type != CRYPTO_KEY:
        return
    limit = int(args.get_config().get("maxRotationDays", KMS_ROTATION_DAYS_MAX))
    seconds = duration_seconds(args.props.get("rotationPeriod"))
    if seconds is None:
        violate(f"key {args.name} never rotates")
    elif seconds < SECONDS_PER_DAY:
        violate(f"key {args.name} rotates every {seconds:g} s; Cloud KMS needs at least one day")
    elif seconds > limit * SECONDS_PER_DAY:
        violate(f"key {args.name} rotates every {seconds / SECONDS_PER_DAY:g} days; at most {limit} are allowed")


POLICY = resource_policy(
    "raptorflow-kms-key-rotation",
    f"Cloud KMS keys rotate at least every {KMS_ROTATION_DAYS_MAX} days.",
    "CKV_GCP_43, GCP-0065, CIS 1.10",
    Severity.HIGH,
    f"set rotation_period (kms.rotationDays in the stack config) to {KMS_ROTATION_DAYS_MAX} days or less",
    _check,
    config=CONFIG,
)

WEAKENINGS = [
    Weakening("prod", f"key db-dumps-key rotates every 365 days; at most {KMS_ROTATION_DAYS_MAX} are allowed",
              "db-dumps-key", {"rotationPeriod": "31536000s"}),
    Weakening("prod", "key db-dumps-key never rotates", "db-dumps-key", {"rotationPeriod": DELETE}),
    Weakening("prod", "key db-dumps-key rotates every 0 s; Cloud KMS needs at least one day", "db-dumps-key",
              {"rotationPeriod": "0s"}),
]
