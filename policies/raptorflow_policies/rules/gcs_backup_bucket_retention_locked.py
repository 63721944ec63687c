"""In prod, a locked retention policy makes backups immutable even for administrators (advisory: irreversible)."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import ADVISORY, Label, Weakening, backup_bucket_policy, get, labels


def _check(args, violate):
    if labels(args.props).get(Label.ENVIRONMENT) == "prod" and get(args.props, "retentionPolicy.isLocked") is not True:
        violate(f"backup bucket {args.name} in prod has an unlocked retention policy")


POLICY = backup_bucket_policy(
    "raptorflow-gcs-backup-bucket-retention-locked",
    "In prod, a locked retention policy makes backups immutable even for administrators (advisory: irreversible).",
    "CKV2_GCP_4, CIS 2.3",
    Severity.MEDIUM,
    "set lockRetention: true once the retention period is final (it can never be shortened afterwards)",
    _check,
    enforcement=ADVISORY,
)

# The repo's prod plan leaves the lock off on purpose (irreversible): the compliant plan sets it.
COMPLIANT = [("prod", ("raptorflow-dr:primary.databaseDumps.lockRetention=true",))]

WEAKENINGS = [
    Weakening("prod", "backup bucket db-dumps-bucket in prod has an unlocked retention policy"),
]
