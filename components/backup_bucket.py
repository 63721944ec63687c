"""BackupBucket: a Cloud Storage bucket fit to hold backups.

Private by construction (uniform bucket-level access, public access prevention
enforced), encrypted with its own customer-managed key that rotates, keeping
every object for the retention period (no delete, no replace), restorable
after deletion for the soft-delete window, logging access to a separate bucket,
protected from `pulumi destroy` and kept by a teardown (retained on delete, imported again by a rebuild).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp

from core.contracts import ACCESS_LOG_ROLE, Label, ResourceType

from . import defaults
from .building_blocks import days_to_seconds, kept, propagated, rotating_key
from .config import BackupBucketSettings

# Google's group that writes Cloud Storage usage and access logs into log buckets.
STORAGE_ANALYTICS_MEMBER = "group:cloud-storage-analytics@google.com"


class _PrivateBucketInputs(TypedDict):
    """The `gcp.storage.Bucket` inputs a backup bucket and its log bucket share."""

    project: str
    location: str
    uniform_bucket_level_access: bool
    public_access_prevention: str
    force_destroy: bool
    encryption: gcp.storage.BucketEncryptionArgs
    soft_delete_policy: gcp.storage.BucketSoftDeletePolicyArgs


@dataclass(frozen=True)
class BackupBucketArgs:
    """Inputs of a BackupBucket."""

    bucket_name: str
    """Globally unique bucket name; the key ring, key and log bucket are named after it."""
    project: str
    """Google Cloud project that owns the bucket and its key."""
    region: str
    """Region of the bucket and its key ring (CMEK keys must share the bucket's location)."""
    settings: BackupBucketSettings
    """Retention, soft delete, storage classes and log retention, as validated stack config."""
    kms_rotation_days: int
    """Days between automatic rotations of the bucket's key."""
    labels: dict[str, str]
    """Labels put on the bucket, its log bucket and its key."""
    role: str
    """What the bucket backs up (`database-dumps`, `user-files`): its `backup-role` label, which policies read."""
    replication_labels: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Where the bucket's copy lives (`replica-region`) or where its source lives (`source-region`)."""
    lookup_options: pulumi.InvokeOutputOptions | None = None
    """Options of the storage service-agent look-up: it must wait until the Cloud Storage API is on."""
    rebuild: bool = False
    """A rebuild after a teardown: the buckets, key ring and key it kept are imported, not created."""
    iam_propagation_seconds: int = defaults.IAM_PROPAGATION_SECONDS
    """How long the buckets wait after the storage agent's key grant (`deploy.iamPropagationSeconds`)."""


class BackupBucket(pulumi.ComponentResource):
    """A private, CMEK-encrypted, retention-locked bucket for backups, with its key and log bucket."""

    bucket_name: pulumi.Output[str]
    """Name of the backup bucket."""
    url: pulumi.Output[str]
    """gs:// URL of the backup bucket."""
    kms_key_id: pulumi.Output[str]
    """Id of the bucket's customer-managed encryption key."""
    log_bucket_name: pulumi.Output[str]
    """Name of the bucket that receives the backup bucket's access logs."""
    storage_agent_email: pulumi.Output[str]
    """The project's Cloud Storage service agent, which uses the key (and publishes change notifications)."""

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None):
        # Declared on the component, so the policy pack knows a backup bucket by the plan, not by a label alone.
        super().__init__(ResourceType.BACKUP_BUCKET, name, {"bucketName": args.bucket_name, "role": args.role},
                         opts)
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        labels = {**args.labels, Label.BACKUP_ROLE.value: args.role}
        log_labels = {**args.labels, Label.BACKUP_ROLE.value: ACCESS_LOG_ROLE}

        # Cloud Storage encrypts and decrypts with the project's service agent, which must be allowed to use the key.
        storage_agent = gcp.storage.get_project_service_account_output(project=args.project, opts=args.lookup_options)
        self.storage_agent_email = storage_agent.email_address
        rotating = rotating_key(
            self, name, ring_name=f"{args.bucket_name}-ring", key_name=f"{args.bucket_name}-key",
            grant_name=f"{name}-key-storage-agent", project=args.project, location=args.region,
            rotation_days=args.kms_rotation_days, labels=labels, agent_member=storage_agent.member,
            rebuild=args.rebuild,
        )
        key = rotating.key
        key_access = propagated(self, f"{name}-key-grant-propagation", [rotating.agent_grant],
                                args.iam_propagation_seconds)

        # What the backup bucket and its log bucket share: private, encrypted, restorable, never force-destroyed.
        private = _PrivateBucketInputs(
            project=args.project,
            location=args.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=False,
            encryption=gcp.storage.BucketEncryptionArgs(default_kms_key_name=key.id),
            soft_delete_policy=gcp.storage.BucketSoftDeletePolicyArgs(
                retention_duration_seconds=days_to_seconds(settings.soft_delete_days)
            ),
        )
        log_bucket = gcp.storage.Bucket(
            f"{name}-logs",
            name=f"{args.bucket_name}-logs",
            **private,
            # Log objects are never replaced, but versioning keeps a deleted one recoverable.
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            lifecycle_rules=[
                _delete_after(settings.access_log_retention_days),
                # Versioning turns an expired log into a noncurrent version: drop those too.
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        days_since_noncurrent_time=settings.soft_delete_days, with_state="ARCHIVED"
                    ),
                ),
            ],
            labels=log_labels,
            opts=kept(self, f"{args.project}/{args.bucket_name}-logs", args.rebuild, key_access),
        )
        gcp.storage.BucketIAMMember(
            f"{name}-logs-writer",
            bucket=log_bucket.name,
            role="roles/storage.objectCreator",
            member=STORAGE_ANALYTICS_MEMBER,
            opts=child,
        )

        # Transitions first, then deletion when retention ends; retention and versioning are exclusive.
        lifecycle = [
            gcp.storage.BucketLifecycleRuleArgs(
                action=gcp.storage.BucketLifecycleRuleActionArgs(type="SetStorageClass", storage_class=step.storage_class),
                condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=step.age_days),
            )
            for step in settings.storage_class_transitions
        ]
        lifecycle.append(_delete_after(settings.retention_days))
        bucket = gcp.storage.Bucket(
            f"{name}-bucket",
            name=args.bucket_name,
            **private,
            retention_policy=gcp.storage.BucketRetentionPolicyArgs(
                retention_period=str(days_to_seconds(settings.retention_days)),
                is_locked=settings.lock_retention,
            ),
            lifecycle_rules=lifecycle,
            logging=gcp.storage.BucketLoggingArgs(log_bucket=log_bucket.name, log_object_prefix=args.bucket_name),
            labels={**labels, **args.replication_labels},
            opts=kept(self, f"{args.project}/{args.bucket_name}", args.rebuild, key_access),
        )

        self.bucket_name = bucket.name
        self.url = bucket.url
        self.kms_key_id = key.id
        self.log_bucket_name = log_bucket.name
        self.register_outputs(
            {
                "bucketName": self.bucket_name,
                "url": self.url,
                "kmsKeyId": self.kms_key_id,
                "logBucketName": self.log_bucket_name,
            }
        )


def _delete_after(days: int) -> gcp.storage.BucketLifecycleRuleArgs:
    return gcp.storage.BucketLifecycleRuleArgs(
        action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
        condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=days),
    )
