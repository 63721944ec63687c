"""The bucket a backup bucket logs into is kept like evidence: protected, soft delete on, logs kept a year, only
Cloud Storage's log writer may write, and only create."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import ACCESS_LOG_RETENTION_DAYS, SECONDS_PER_DAY, SOFT_DELETE_DAYS_MAX, SOFT_DELETE_DAYS_MIN

from .._base import BUCKET, Weakening, backup_buckets, bucket_of, get, grants, is_iam_grant, number, of_type, stack_policy

LOG_WRITER = "group:cloud-storage-analytics@google.com"
CONFIG = {"minLogRetentionDays": {"type": "integer", "description": "Fewest days access logs are kept.",
                                  "default": ACCESS_LOG_RETENTION_DAYS}}


def _lifecycle_problems(bucket, minimum: int) -> list[str]:
    problems = []
    for index, rule in enumerate(bucket.props.get("lifecycleRules") or []):
        if get(rule, "action.type") != "Delete":
            continue
        age, state = number(get(rule, "condition.age")), get(rule, "condition.withState")
        noncurrent_days = number(get(rule, "condition.daysSinceNoncurrentTime"))
        only_noncurrent = state == "ARCHIVED" and noncurrent_days is not None
        if only_noncurrent and noncurrent_days is not None and noncurrent_days < SOFT_DELETE_DAYS_MIN:
            # A deleted (or replaced) log object becomes noncurrent: that version is the evidence, kept a while.
            problems.append(f"lifecycle rule {index} deletes noncurrent log versions after {noncurrent_days:g} days")
        if not only_noncurrent and (age is None or age < minimum):
            problems.append(f"lifecycle rule {index} deletes logs at {'any' if age is None else f'{age:g}'} days")
    return problems


def _check(args, violate):
    minimum = int(args.get_config().get("minLogRetentionDays", ACCESS_LOG_RETENTION_DAYS))
    backups = backup_buckets(args.resources)
    buckets = {b.props.get("name"): b for b in of_type(args.resources, BUCKET)}
    log_buckets = {get(b.props, "logging.logBucket") for name, b in buckets.items() if name in backups}
    for name in sorted(n for n in log_buckets if n and n not in backups):
        bucket = buckets.get(name)
        if bucket is None:
            violate(f"access-log bucket {name} is not in the stack: backup buckets log into a bucket nobody keeps")
            continue
        problems = []
        if not bucket.opts.protect or bucket.props.get("forceDestroy") is True:
            problems.append("not protected from deletion (protect, force_destroy off)")
        seconds = number(get(bucket.props, "softDeletePolicy.retentionDurationSeconds")) or 0.0
        if not SOFT_DELETE_DAYS_MIN * SECONDS_PER_DAY <= seconds <= SOFT_DELETE_DAYS_MAX * SECONDS_PER_DAY:
            problems.append(f"soft delete {seconds / SECONDS_PER_DAY:g} days")
        problems += _lifecycle_problems(bucket, minimum)
        for grant in args.resources:
            if is_iam_grant(grant.resource_type) and bucket_of(grant.props.get("bucket")) == name:
                problems += [f"{member} holds {role}" for role, member in grants(grant.props)
                             if (member, role) != (LOG_WRITER, "roles/storage.objectCreator")]
        if not any(is_iam_grant(g.resource_type) and bucket_of(g.props.get("bucket")) == name
                   and (LOG_WRITER, "roles/storage.objectCreator") in [(m, r) for r, m in grants(g.props)]
                   for g in args.resources):
            problems.append(f"{LOG_WRITER} may not write the logs")
        if problems:
            violate(f"access-log bucket {name} is not kept as evidence: {'; '.join(problems)}", bucket.urn)


POLICY = stack_policy(
    "raptorflow-gcs-access-log-bucket-kept",
    f"The bucket backup buckets log into is protected, soft-deletes {SOFT_DELETE_DAYS_MIN}-{SOFT_DELETE_DAYS_MAX} "
    f"days, keeps logs at least {ACCESS_LOG_RETENTION_DAYS} days (only noncurrent versions go sooner), and only "
    "Cloud Storage's log writer may write to it, create-only.",
    "CKV_GCP_62, CIS 2.3 (log retention)",
    Severity.MEDIUM,
    "keep the log bucket BackupBucket creates (accessLogRetentionDays in the stack config, at least the minimum)",
    _check,
    config=CONFIG,
)

WEAKENINGS = [
    Weakening("prod", "access-log bucket raptorflow-prod-db-dumps-logs is not kept as evidence: not protected from "
              "deletion (protect, force_destroy off)", "db-dumps-logs", protect=False),
    Weakening("prod", "access-log bucket raptorflow-prod-db-dumps-logs is not kept as evidence: lifecycle rule 0 "
              "deletes logs at 36 days", "db-dumps-logs", {"lifecycleRules.0.condition.age": 36}),
    Weakening("dr", "access-log bucket raptorflow-dr-db-dumps-replica-logs is not kept as evidence: "
              "group:cloud-storage-analytics@google.com may not write the logs",
              removed=("db-dumps-replica-sink-logs-writer",)),
    Weakening("prod", "access-log bucket raptorflow-prod-db-dumps-logs is not in the stack: backup buckets log into a "
              "bucket nobody keeps", removed=("db-dumps-logs",)),
    Weakening("prod", "access-log bucket raptorflow-prod-db-dumps-logs is not kept as evidence: lifecycle rule 1 "
              "deletes noncurrent log versions after 0 days", "db-dumps-logs",
              {"lifecycleRules.1.condition.daysSinceNoncurrentTime": 0}),
]
