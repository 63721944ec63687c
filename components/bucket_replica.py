"""BucketReplica: a copy of a bucket in another region, kept by Storage Transfer Service.

Dual-region buckets and turbo replication stay within one continent, so the
plan's US -> EU copy is a second BackupBucket that a transfer job fills from
the source. The job only ever adds: it never deletes in the sink (that would
turn a backup into a mirror of mistakes), never deletes the source, and never
overwrites (the sink's retention policy would refuse it anyway).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_gcp as gcp

from core.contracts import ResourceType
from core.roles import TRANSFER_SOURCE_NOTIFIER

from . import defaults
from .backup_bucket import BackupBucket, BackupBucketArgs
from .building_blocks import days_to_seconds, propagated
from .config import TransferSettings

# The transfer service agent reads the source (list, get bucket, read objects) and
# writes the sink without delete rights: create objects, get the bucket, list objects, and get
# objects - with overwriteWhen NEVER it reads what is there before deciding not to overwrite
# (https://cloud.google.com/storage-transfer/docs/sink-cloud-storage: storage.objects.get is
# "required if your transfer is configured to overwrite objects in the sink when different, or never").
SOURCE_ROLES = ("roles/storage.objectViewer", "roles/storage.legacyBucketReader")
SINK_ROLES = ("roles/storage.objectCreator", "roles/storage.objectViewer", "roles/storage.legacyBucketReader")
# Event-driven replication (https://cloud.google.com/storage-transfer/docs/cross-bucket-replication)
# watches the source through Pub/Sub notifications that the transfer agent sets up: it needs
# storage.buckets.update on the source (a custom role of the source project, `SOURCE_NOTIFIER_PERMISSIONS`,
# instead of the console's legacyBucketOwner, which could also delete objects and change IAM), its service
# agent role in the job's project for the topic and subscription, and the source project's Cloud Storage
# agent publishes the notifications to that topic.
SOURCE_NOTIFIER_PERMISSIONS = TRANSFER_SOURCE_NOTIFIER.permissions
TRANSFER_AGENT_PROJECT_ROLE = "roles/storagetransfer.serviceAgent"
NOTIFICATION_PUBLISHER_ROLE = "roles/pubsub.publisher"


class _TransferOptions(TypedDict):
    """Keyword arguments shared by the transfer-spec and replication-spec TransferOptionsArgs."""

    delete_objects_unique_in_sink: bool
    delete_objects_from_source_after_transfer: bool
    overwrite_when: str


# Transfer options of every job: a backup copy only ever adds objects.
NEVER_DELETE_OR_OVERWRITE: _TransferOptions = {
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
    replication_access: ReplicationAccess | None = None
    """The project-level grants event-driven replication needs, made once per project."""
    source_notifier_role: pulumi.Input[str] | None = None
    """Custom role of the source project holding `SOURCE_NOTIFIER_PERMISSIONS`; needed with event-driven
    replication (the primary stack creates it and exports its id)."""
    lookup_options: pulumi.InvokeOutputOptions | None = None
    """Options of the service-agent look-ups: they must wait until the Storage Transfer API is on."""


class BucketReplica(pulumi.ComponentResource):
    """A BackupBucket in this region plus the transfer job that copies a source bucket into it daily."""

    bucket_name: pulumi.Output[str]
    """Name of the replica bucket."""
    url: pulumi.Output[str]
    """gs:// URL of the replica bucket."""
    kms_key_id: pulumi.Output[str]
    """Id of the replica bucket's encryption key."""
    transfer_job_name: pulumi.Output[str]
    """Name of the daily Storage Transfer Service job that keeps the copy."""
    transfer_job_names: tuple[pulumi.Output[str], ...]
    """Every transfer job that fills the copy: the daily one, and the event-driven one where on."""
    transfer_job_created: pulumi.Output[str]
    """When the daily transfer job was created (RFC 3339)."""

    def __init__(self, name: str, args: BucketReplicaArgs, opts: pulumi.ResourceOptions | None = None):
        # Declared on the component, so the policy pack can tell a copy that stopped being made.
        super().__init__(ResourceType.BUCKET_REPLICA, name,
                         {"sinkBucketName": args.sink.bucket_name, "eventDriven": args.transfer.event_driven}, opts)
        child = pulumi.ResourceOptions(parent=self)
        sink = BackupBucket(f"{name}-sink", args.sink, child)

        agent = gcp.storage.get_transfer_project_service_account_output(
            project=args.sink.project, opts=args.lookup_options
        )
        grants: list[pulumi.CustomResource] = [
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

        # Storage Transfer checks the agent's access to both buckets when it creates the job, without retry.
        ready = propagated(self, f"{name}-grant-propagation", grants, args.sink.iam_propagation_seconds)
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
            opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
        )

        names = [job.name]
        if args.transfer.event_driven:
            if args.source_notifier_role is None or args.replication_access is None:
                raise ValueError(f"{name}: event-driven replication needs source_notifier_role and replication_access")
            notifier = gcp.storage.BucketIAMMember(
                f"{name}-source-notifier", bucket=args.source_bucket_name, role=args.source_notifier_role,
                member=agent.member, opts=child,
            )
            grants = [*grants, notifier, *args.replication_access.grants]
            ready = propagated(self, f"{name}-replication-grant-propagation", grants,
                               args.sink.iam_propagation_seconds)
            # New and changed objects follow within minutes; the daily job above still catches anything missed.
            replication = gcp.storage.TransferJob(
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
                opts=pulumi.ResourceOptions(parent=self, depends_on=ready),
            )
            names.append(replication.name)

        self.bucket_name = sink.bucket_name
        self.transfer_job_names = tuple(names)
        self.url = sink.url
        self.kms_key_id = sink.kms_key_id
        self.transfer_job_name = job.name
        self.transfer_job_created = job.creation_time
        self.register_outputs(
            {
                "bucketName": self.bucket_name,
                "url": self.url,
                "kmsKeyId": self.kms_key_id,
                "transferJobName": self.transfer_job_name,
            }
        )


@dataclass(frozen=True)
class ReplicationAccessArgs:
    """Inputs of a ReplicationAccess."""

    project: str
    """Project of the transfer jobs (where the Pub/Sub topic and subscription live)."""
    source_storage_agent: pulumi.Input[str]
    """Email of the source project's Cloud Storage service agent, which publishes the change notifications: the
    primary stack exports it (`storageServiceAgent`), since looking it up from here would need
    resourcemanager.projects.get on the source project."""
    lookup_options: pulumi.InvokeOutputOptions | None = None
    """Options of the service-agent look-ups (they wait for the APIs)."""


class ReplicationAccess(pulumi.ComponentResource):
    """The project-level grants of event-driven replication, once per project (IAM members of the same binding
    in two places would remove it for both when either is deleted)."""

    grants: tuple[pulumi.CustomResource, ...]
    """The grants a replication job waits for."""

    def __init__(self, name: str, args: ReplicationAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:storage:ReplicationAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        transfer_agent = gcp.storage.get_transfer_project_service_account_output(
            project=args.project, opts=args.lookup_options
        )
        self.grants = (
            gcp.projects.IAMMember(
                f"{name}-agent-topics", project=args.project, role=TRANSFER_AGENT_PROJECT_ROLE,
                member=transfer_agent.member, opts=child,
            ),
            gcp.projects.IAMMember(
                f"{name}-source-publisher", project=args.project, role=NOTIFICATION_PUBLISHER_ROLE,
                member=pulumi.Output.concat("serviceAccount:", args.source_storage_agent), opts=child,
            ),
        )
        self.register_outputs({})
