"""No lifecycle rule deletes a backup before its retention ends."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import RETENTION_DAYS

from .._base import DATABASE_DUMPS, Weakening, backup_bucket_policy, get, number


def _check(args, violate):
    minimum = RETENTION_DAYS[args.role]
    for index, rule in enumerate(args.props.get("lifecycleRules") or []):
        if get(rule, "action.type") != "Delete":
            continue
        age = number(get(rule, "condition.age"))
        if age is None or age < minimum:
            shown = "any age" if age is None else f"{age:g} days"
            violate(f"backup bucket {args.name} ({args.role}) deletes objects at {shown} (lifecycle rule {index}); "
                    f"its retention is {minimum} days")


POLICY = backup_bucket_policy(
    "raptorflow-gcs-backup-bucket-lifecycle",
    "A lifecycle rule that deletes objects of a backup bucket waits at least the role's retention (age).",
    "CKV2_GCP_4 (retention), GCS object lifecycle",
    Severity.HIGH,
    "delete only with condition.age at or beyond the retention days (or move to a colder class instead)",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "backup bucket db-dumps-bucket (database-dumps) deletes objects at 1 days (lifecycle rule 1); "
              f"its retention is {RETENTION_DAYS[DATABASE_DUMPS.label]} days", "db-dumps-bucket",
              {"lifecycleRules.1": {"action": {"type": "Delete"}, "condition": {"age": 1}}}),
]
