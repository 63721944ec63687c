"""BucketReplica: a copy of a bucket in another region, kept by Storage Transfer Service.

Dual-region buckets and turbo replication stay within one continent, so the
plan's US -> EU copy is a second BackupBucket that a transfer job fills from
the source. The job only ever adds: it never deletes in the sink (that would
turn a backup into a mirror of mistakes), never deletes the source, and never
overwrites (the sink's retention policy would refuse it anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_gcp as gcp

from . import defaults
from .backup_bucket import BackupBucket, BackupBucketArgs, days_to_seconds
from .stack_config import TransferSettings

# The transfer service agent reads the source (list, get bucket, read objects) and
# writes the sink without delete rights: create objects, get the bucket, list objects.
SOURCE_ROLES = ("roles/storage.objectViewer", "roles/storage.legacyBucketReader")
SINK_ROLES = ("roles/storage.objectCreator", "roles/storage.legacyBucketReader")
# Transfer options of every job: a backup copy only ever adds objects.
NEVER_DELETE_OR_OVERWRITE = {
    "delete_objects_unique_in_sink": False,
    "delete_objects_from_source_after_transfer": False,
    "overwrite_when": "NEVER",
}


@dataclass(frozen=True)
class BucketReplicaArgs:
    """Inputs of a BucketReplica."""

    source_bucket_name: pulumi.Input[str]
    """Bucket to copy from (usually read from the primary stack's outputs)."""
    sink: BackupBucketArgs
    """The replica bucket, a BackupBucket in this site's region."""
    transfer: TransferSettings
    """When the daily full sync starts."""
    description: str
    """What the transfer job copies, shown in the console."""


class BucketReplica(pulumi.ComponentResource):
    """A BackupBucket in this region plus the transfer job that copies a source bucket into it daily."""

    bucket_name: pulumi.Output[str]
    """Name of the replica bucket."""
    url: pulumi.Output[str]
    """gs:// URL of the replica bucket."""
    kms_key_id: pulumi.Output[str]
    """Id of the replica bucket's encryption key."""
    transfer_job_name: pulumi.Output[str]
    """Name of the Storage Transfer Service job that keeps the copy."""

    def __init__(self, name: str, args: BucketReplicaArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("raptorflow:storage:BucketReplica", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sink = BackupBucket(f"{name}-sink", args.sink, child)

        agent = gcp.storage.get_transfer_project_service_account_output(project=args.sink.project)
        grants = [
            gcp.storage.BucketIAMMember(
                f"{name}-{side}-{role.rsplit('.', 1)[-1].lower()}",
                bucket=bucket,
                role=role,
                member=agent.member,
                opts=child,
            )
            for side, bucket, roles in (
                ("source", args.source_bucket_name, SOURCE_ROLES),
                ("sink", sink.bucket_name, SINK_ROLES),
            )
            for role in roles
        ]

        job = gcp.storage.TransferJob(
            f"{name}-transfer",
            project=args.sink.project,
            description=args.description,
            transfer_spec=gcp.storage.TransferJobTransferSpecArgs(
                gcs_data_source=gcp.storage.TransferJobTransferSpecGcsDataSourceArgs(bucket_name=args.source_bucket_name),
                gcs_data_sink=gcp.storage.TransferJobTransferSpecGcsDataSinkArgs(bucket_name=sink.bucket_name),
                transfer_options=gcp.storage.TransferJobTransferSpecTransferOptionsArgs(**NEVER_DELETE_OR_OVERWRITE),
            ),
            schedule=gcp.storage.TransferJobScheduleArgs(
                schedule_start_date=gcp.storage.TransferJobScheduleScheduleStartDateArgs(
                    **defaults.TRANSFER_SCHEDULE_START_DATE
                ),
                start_time_of_day=gcp.storage.TransferJobScheduleStartTimeOfDayArgs(
                    hours=args.transfer.hours, minutes=args.transfer.minutes, seconds=0, nanos=0
                ),
                repeat_interval=f"{days_to_seconds(1)}s",
            ),
            logging_config=gcp.storage.TransferJobLoggingConfigArgs(
                log_actions=["FIND", "COPY"],
                log_action_states=["SUCCEEDED", "FAILED"],
            ),
            status="ENABLED",
            opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
        )

        if args.transfer.event_driven:
            # New and changed objects follow within minutes; the daily job above still catches anything missed.
            gcp.storage.TransferJob(
                f"{name}-replication",
                project=args.sink.project,
                description=f"{args.description} (event-driven)",
                replication_spec=gcp.storage.TransferJobReplicationSpecArgs(
                    gcs_data_source=gcp.storage.TransferJobReplicationSpecGcsDataSourceArgs(
                        bucket_name=args.source_bucket_name
                    ),
                    gcs_data_sink=gcp.storage.TransferJobReplicationSpecGcsDataSinkArgs(bucket_name=sink.bucket_name),
                    transfer_options=gcp.storage.TransferJobReplicationSpecTransferOptionsArgs(
                        **NEVER_DELETE_OR_OVERWRITE
                    ),
                ),
                logging_config=gcp.storage.TransferJobLoggingConfigArgs(
                    log_actions=["COPY"], log_action_states=["SUCCEEDED", "FAILED"],
                ),
                status="ENABLED",
                opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
            )

        self.bucket_name = sink.bucket_name
        self.url = sink.url
        self.kms_key_id = sink.kms_key_id
        self.transfer_job_name = job.name
        self.register_outputs(
            {
                "bucketName": self.bucket_name,
                "url": self.url,
                "kmsKeyId": self.kms_key_id,
                "transferJobName": self.transfer_job_name,
            }
        )
