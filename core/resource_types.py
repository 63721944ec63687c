"""The resource type tokens (`pkg:module:Name`) that more than one module looks for in a plan: the components
declare them, the policy pack, the recovery model and the tools find resources by them.

Part of the contracts between the layers (core.contracts re-exports it); standard library only.
"""

from __future__ import annotations

import enum


class ResourceType(enum.StrEnum):
    """Type tokens that more than one module looks for in a plan (`pkg:module:Name`)."""

    BUCKET = "gcp:storage/bucket:Bucket"
    TRANSFER_JOB = "gcp:storage/transferJob:TransferJob"
    BUCKET_IAM_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
    BUCKET_IAM_BINDING = "gcp:storage/bucketIAMBinding:BucketIAMBinding"
    BUCKET_IAM_POLICY = "gcp:storage/bucketIAMPolicy:BucketIAMPolicy"
    BUCKET_ACCESS_CONTROL = "gcp:storage/bucketAccessControl:BucketAccessControl"
    BUCKET_ACL = "gcp:storage/bucketACL:BucketACL"
    DEFAULT_OBJECT_ACCESS_CONTROL = "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl"
    DEFAULT_OBJECT_ACL = "gcp:storage/defaultObjectACL:DefaultObjectACL"
    OBJECT_ACCESS_CONTROL = "gcp:storage/objectAccessControl:ObjectAccessControl"
    OBJECT_ACL = "gcp:storage/objectACL:ObjectACL"
    RUN_JOB = "gcp:cloudrunv2/job:Job"
    SCHEDULER_JOB = "gcp:cloudscheduler/job:Job"
    CRYPTO_KEY = "gcp:kms/cryptoKey:CryptoKey"
    KEY_RING = "gcp:kms/keyRing:KeyRing"
    CRYPTO_KEY_IAM_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
    CRYPTO_KEY_IAM_BINDING = "gcp:kms/cryptoKeyIAMBinding:CryptoKeyIAMBinding"
    CRYPTO_KEY_IAM_POLICY = "gcp:kms/cryptoKeyIAMPolicy:CryptoKeyIAMPolicy"
    ALERT_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
    NOTIFICATION_CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
    UPTIME_CHECK = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
    LOG_METRIC = "gcp:logging/metric:Metric"
    PROJECT_IAM_MEMBER = "gcp:projects/iAMMember:IAMMember"
    PROJECT_IAM_BINDING = "gcp:projects/iAMBinding:IAMBinding"
    PROJECT_IAM_POLICY = "gcp:projects/iAMPolicy:IAMPolicy"
    CUSTOM_ROLE = "gcp:projects/iAMCustomRole:IAMCustomRole"
    PROJECT_SERVICE = "gcp:projects/service:Service"
    SERVICE_IDENTITY = "gcp:projects/serviceIdentity:ServiceIdentity"
    SECRET = "gcp:secretmanager/secret:Secret"
    SECRET_VERSION = "gcp:secretmanager/secretVersion:SecretVersion"
    SECRET_IAM_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
    SERVICE_ACCOUNT = "gcp:serviceaccount/account:Account"
    REPOSITORY = "gcp:artifactregistry/repository:Repository"
    DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
    LOAD_BALANCER = "cloudflare:index/loadBalancer:LoadBalancer"
    LOAD_BALANCER_POOL = "cloudflare:index/loadBalancerPool:LoadBalancerPool"
    LOAD_BALANCER_MONITOR = "cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor"
    VERCEL_VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
    STACK = "pulumi:pulumi:Stack"
    STACK_REFERENCE = "pulumi:pulumi:StackReference"
    RECOVERY_OBJECTIVES = "raptorflow:recovery:RecoveryObjectives"
    BACKUP_BUCKET = "raptorflow:storage:BackupBucket"
    BUCKET_REPLICA = "raptorflow:storage:BucketReplica"
    FAILOVER_RECORD = "raptorflow:failover:FailoverRecord"
    FAILOVER_LOAD_BALANCER = "raptorflow:failover:FailoverLoadBalancer"
    REGION_ENVIRONMENT = "raptorflow:failover:RegionEnvironment"
