"""raptorflow-dr: the disaster-recovery plan as infrastructure.

One program, two stacks; the stack config's `site` says which one this is.

- prod (site `primary`, US): the database-dump bucket (30-day retention, CMEK,
  access logs); exports its name, URL and key, the region and the user-files
  bucket the standby site copies.
- dr (site `standby`, EU): replicas of prod's database-dump bucket (30 days)
  and user-files bucket (90 days), each filled daily by a Storage Transfer
  Service job that never deletes. Prod's outputs arrive via a StackReference.
"""

import pulumi

from components.backup_bucket import BackupBucketArgs, BackupBucket
from components.bucket_replica import BucketReplica, BucketReplicaArgs
from components.stack_config import load_stack_config

config = load_stack_config()


def bucket_args(suffix: str, settings) -> BackupBucketArgs:
    """Arguments of a backup bucket of this site, named `<prefix>-<suffix>`."""
    return BackupBucketArgs(
        bucket_name=f"{config.name_prefix}-{suffix}",
        project=config.gcp.project,
        region=config.gcp.region,
        settings=settings,
        kms_rotation_days=config.kms.rotation_days,
        labels=config.labels,
    )


if config.site == "primary":
    dumps = BackupBucket("db-dumps", bucket_args("db-dumps", config.database_dumps))
    pulumi.export("region", config.gcp.region)
    pulumi.export("databaseDumpsBucket", dumps.bucket_name)
    pulumi.export("databaseDumpsBucketUrl", dumps.url)
    pulumi.export("databaseDumpsKmsKey", dumps.kms_key_id)
    pulumi.export("databaseDumpsLogBucket", dumps.log_bucket_name)
    pulumi.export("userFilesBucket", config.user_files_bucket)
else:
    prod = pulumi.StackReference(config.prod_stack)
    copies = {
        "databaseDumps": ("db-dumps-replica", "database dumps", config.replicas.database_dumps),
        "userFiles": ("user-files-replica", "user files", config.replicas.user_files),
    }
    for output, (name, what, settings) in copies.items():
        replica = BucketReplica(
            name,
            BucketReplicaArgs(
                source_bucket_name=prod.require_output(f"{output}Bucket"),
                sink=bucket_args(name, settings),
                transfer=settings.transfer,
                description=f"Daily copy of the primary site's {what} into {config.gcp.region}",
            ),
        )
        pulumi.export(f"{output}ReplicaBucket", replica.bucket_name)
        pulumi.export(f"{output}ReplicaBucketUrl", replica.url)
        pulumi.export(f"{output}ReplicaKmsKey", replica.kms_key_id)
        pulumi.export(f"{output}TransferJob", replica.transfer_job_name)
    pulumi.export("region", config.gcp.region)
    pulumi.export("promoted", config.promoted)
