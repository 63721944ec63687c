"""Cloud Storage rules: private, encrypted, retained, logged, soft-deletable, copied to another continent."""

from __future__ import annotations

from pulumi_policy import Severity

from core.regions import continent

from ._base import (
    ADVISORY,
    BUCKET,
    SECONDS_PER_DAY,
    TRANSFER_JOB,
    backup_role,
    get,
    labels,
    of_type,
    resource_policy,
    stack_policy,
)


def _buckets_only(check):
    def run(args, violate):
        if args.resource_type == BUCKET:
            check(args, violate)
    return run


def _backup_buckets_only(check):
    def run(args, violate):
        if args.resource_type == BUCKET and backup_role(args.props):
            check(args, violate)
    return run


uniform_access = resource_policy(
    "raptorflow-gcs-backup-bucket-uniform-access",
    "Buckets use uniform bucket-level access, so no object ACL can open an object.",
    "CKV_GCP_29, GCP-0002, CIS 5.2",
    Severity.HIGH,
    "set uniform_bucket_level_access=True on the bucket",
    _buckets_only(lambda args, violate: None if args.props.get("uniformBucketLevelAccess") is True
                  else violate(f"bucket {args.name} does not enforce uniform bucket-level access")),
)

public_access_prevention = resource_policy(
    "raptorflow-gcs-bucket-enforce-public-access-prevention",
    "Public access prevention is `enforced` on every bucket (unset fails).",
    "CKV_GCP_114, gcp-storage-bucket-enforce-public-access-prevention",
    Severity.CRITICAL,
    'set public_access_prevention="enforced" on the bucket',
    _buckets_only(lambda args, violate: None if args.props.get("publicAccessPrevention") == "enforced"
                  else violate(f"bucket {args.name} has public access prevention "
                               f"'{args.props.get('publicAccessPrevention', 'unset')}', not 'enforced'")),
)

customer_managed_key = resource_policy(
    "raptorflow-gcs-backup-bucket-cmek",
    "Backup buckets encrypt with a customer-managed Cloud KMS key.",
    "GCP-0066, bucket-customer-managed-kms",
    Severity.HIGH,
    "set encryption.default_kms_key_name to the bucket's Cloud KMS key (BackupBucket does this)",
    _backup_buckets_only(lambda args, violate: None if get(args.props, "encryption.defaultKmsKeyName")
                         else violate(f"backup bucket {args.name} has no customer-managed encryption key")),
)


def _deletion_protection(args, violate):
    if args.props.get("forceDestroy") is True:
        violate(f"backup bucket {args.name} has force_destroy on: `pulumi destroy` would delete its backups")
    if not args.opts.protect:
        violate(f"backup bucket {args.name} is not protected (protect=True)")


bucket_deletion_protection = resource_policy(
    "raptorflow-gcs-backup-bucket-deletion-protection",
    "Backup buckets are protected from deletion: `protect` on, `force_destroy` off.",
    "CKV_GCP_82, kms-key-lifecycle",
    Severity.CRITICAL,
    "pass ResourceOptions(protect=True) and force_destroy=False",
    _backup_buckets_only(_deletion_protection),
)

RETENTION_CONFIG = {
    "minRetentionDays": {
        "type": "object",
        "description": "Minimum retention per backup-role label, in days.",
        "default": {"database-dumps": 30, "user-files": 90},
    }
}


def _retention(args, violate):
    role = backup_role(args.props)
    minimum = int(args.get_config().get("minRetentionDays", RETENTION_CONFIG["minRetentionDays"]["default"])[role])
    period = get(args.props, "retentionPolicy.retentionPeriod")
    seconds = float(period) if period not in (None, "") else 0.0
    if seconds < minimum * SECONDS_PER_DAY:
        violate(f"backup bucket {args.name} ({role}) keeps objects {seconds / SECONDS_PER_DAY:g} days; "
                f"at least {minimum} days are required")


retention = resource_policy(
    "raptorflow-gcs-backup-bucket-retention",
    "Backup buckets keep every object at least the configured retention (30 days database dumps, 90 user files).",
    "CKV2_GCP_4, CIS 2.3",
    Severity.HIGH,
    "raise retentionDays in the stack config to at least the minimum",
    _backup_buckets_only(_retention),
    config=RETENTION_CONFIG,
)


def _locked(args, violate):
    if labels(args.props).get("environment") == "prod" and get(args.props, "retentionPolicy.isLocked") is not True:
        violate(f"backup bucket {args.name} in prod has an unlocked retention policy")


retention_locked = resource_policy(
    "raptorflow-gcs-backup-bucket-retention-locked",
    "In prod, a locked retention policy makes backups immutable even for administrators (advisory: irreversible).",
    "CKV2_GCP_4, CIS 2.3",
    Severity.MEDIUM,
    "set lockRetention: true once the retention period is final (it can never be shortened afterwards)",
    _backup_buckets_only(_locked),
    enforcement=ADVISORY,
)


def _access_logs(args, violate):
    target = get(args.props, "logging.logBucket")
    if not target:
        violate(f"backup bucket {args.name} writes no access logs")
    elif target == args.props.get("name"):
        violate(f"backup bucket {args.name} logs into itself")


access_logs = resource_policy(
    "raptorflow-gcs-backup-bucket-access-logs",
    "Backup buckets write access logs to a different bucket.",
    "CKV_GCP_62, CKV_GCP_63, GCP-0077",
    Severity.MEDIUM,
    "set logging.log_bucket to a separate log bucket (BackupBucket creates one)",
    _backup_buckets_only(_access_logs),
)


def _versioning(args, violate):
    if get(args.props, "retentionPolicy.retentionPeriod"):
        return  # a retention policy already guards every object; versioning is exclusive with it
    if get(args.props, "versioning.enabled") is not True:
        violate(f"bucket {args.name} has neither a retention policy nor versioning")


versioning = resource_policy(
    "raptorflow-gcs-bucket-versioning",
    "Buckets without a retention policy keep versions (the two are exclusive, so never both are demanded).",
    "CKV_GCP_78, GCP-0078",
    Severity.MEDIUM,
    "enable versioning, or give the bucket a retention policy",
    _buckets_only(_versioning),
)


def _soft_delete(args, violate):
    seconds = get(args.props, "softDeletePolicy.retentionDurationSeconds")
    if seconds is None or float(seconds) < 7 * SECONDS_PER_DAY:
        shown = "unset" if seconds is None else f"{float(seconds) / SECONDS_PER_DAY:g} days"
        violate(f"backup bucket {args.name} keeps deleted objects {shown}; at least 7 days are required")


soft_delete = resource_policy(
    "raptorflow-gcs-backup-bucket-soft-delete",
    "Soft delete stays on for backup buckets, at least 7 days.",
    "GCS soft-delete guidance",
    Severity.MEDIUM,
    "set softDeleteDays to 7-90 in the stack config",
    _backup_buckets_only(_soft_delete),
)


def _cross_region(args, violate):
    buckets = [b for b in of_type(args.resources, BUCKET) if backup_role(b.props)]
    sinks = {
        get(job.props, "transferSpec.gcsDataSink.bucketName") or get(job.props, "replicationSpec.gcsDataSink.bucketName")
        for job in of_type(args.resources, TRANSFER_JOB)
    }
    for bucket in buckets:
        name, location = bucket.props.get("name"), bucket.props.get("location", "")
        bucket_labels = labels(bucket.props)
        other = bucket_labels.get("source-region") or bucket_labels.get("replica-region")
        if not other:
            violate(f"backup bucket {name} has no copy in another region (no replica-region or source-region)",
                    bucket.urn)
        elif continent(other) == continent(location):
            violate(f"backup bucket {name} in {location} is copied within the same continent ({other})", bucket.urn)
        elif "source-region" in bucket_labels and name not in sinks:
            violate(f"replica bucket {name} is filled by no transfer job in this stack", bucket.urn)


cross_region_copy = stack_policy(
    "raptorflow-gcs-backup-bucket-cross-region-copy",
    "Every backup bucket has a copy on another continent: a primary declares where its replica lives, "
    "a replica is filled by a transfer job.",
    "bucket-multi-region",
    Severity.HIGH,
    "replicate the bucket with BucketReplica in the standby stack and set standbyRegion on the primary",
    _cross_region,
)

POLICIES = [
    uniform_access, public_access_prevention, customer_managed_key, bucket_deletion_protection, retention,
    retention_locked, access_logs, versioning, soft_delete, cross_region_copy,
]
