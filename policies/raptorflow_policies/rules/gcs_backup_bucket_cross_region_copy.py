"""Every backup bucket has a copy on another continent."""

from __future__ import annotations

from pulumi_policy import Severity

from core.regions import continent

from .._base import (
    BUCKET,
    DATABASE_DUMPS,
    DELETE,
    TRANSFER_JOB,
    Label,
    ResourceType,
    Weakening,
    backup_buckets,
    get,
    labels,
    of_type,
    stack_policy,
)

REPLICA = ResourceType.BUCKET_REPLICA


def _declared_copies(args, violate):
    jobs: dict[tuple[str, str], int] = {}
    for job in of_type(args.resources, TRANSFER_JOB):
        for spec in ("transferSpec", "replicationSpec"):
            sink = get(job.props, f"{spec}.gcsDataSink.bucketName")
            if sink:
                jobs[(sink, spec)] = jobs.get((sink, spec), 0) + 1
    for sink, _ in sorted(jobs):
        if not jobs.get((sink, "transferSpec")):  # every copy has its daily catch-up, declared or not
            violate(f"replica bucket {sink} has no scheduled transfer job (the daily catch-up copy)")
    for replica in of_type(args.resources, REPLICA):
        sink = replica.props.get("sinkBucketName")
        if sink and not jobs.get((sink, "transferSpec")) and not jobs.get((sink, "replicationSpec")):
            violate(f"replica bucket {sink} has no scheduled transfer job (the daily catch-up copy)", replica.urn)
        if sink and replica.props.get("eventDriven") and not jobs.get((sink, "replicationSpec")):
            violate(f"replica bucket {sink} is declared event-driven but no replication job fills it", replica.urn)


def _check(args, violate):
    _declared_copies(args, violate)
    projects = {b.props.get("name"): b.props.get("project") for b in of_type(args.resources, BUCKET)}
    for job in of_type(args.resources, TRANSFER_JOB):
        for spec in ("transferSpec", "replicationSpec"):
            sink = get(job.props, f"{spec}.gcsDataSink.bucketName")
            if sink in projects and job.props.get("project") != projects[sink]:
                violate(f"transfer job {job.name} runs in project {job.props.get('project')}, not in its sink's "
                        f"project {projects[sink]} whose agent the plan grants", job.urn)
    roles = backup_buckets(args.resources)
    buckets = [b for b in of_type(args.resources, BUCKET) if b.props.get("name") in roles]
    sinks = {
        get(job.props, "transferSpec.gcsDataSink.bucketName") or get(job.props, "replicationSpec.gcsDataSink.bucketName")
        for job in of_type(args.resources, TRANSFER_JOB)
    }
    for bucket in buckets:
        name, location = bucket.props.get("name"), bucket.props.get("location", "")
        bucket_labels = labels(bucket.props)
        other = bucket_labels.get(Label.SOURCE_REGION) or bucket_labels.get(Label.REPLICA_REGION)
        if continent(location) == location.lower() or (other and continent(other) == other.lower()):
            violate(f"backup bucket {name} is in {location} copied to {other}: a location whose continent is not "
                    "known cannot be shown to be on another continent", bucket.urn)
        elif not other:
            violate(f"backup bucket {name} has no copy in another region (no {Label.REPLICA_REGION} or "
                    f"{Label.SOURCE_REGION})", bucket.urn)
        elif continent(other) == continent(location):
            violate(f"backup bucket {name} in {location} is copied within the same continent ({other})", bucket.urn)
        elif Label.SOURCE_REGION in bucket_labels and name not in sinks:
            violate(f"replica bucket {name} is filled by no transfer job in this stack", bucket.urn)


POLICY = stack_policy(
    "raptorflow-gcs-backup-bucket-cross-region-copy",
    "Every backup bucket has a copy on another continent: a primary declares where its replica lives, "
    "a replica is filled by a transfer job.",
    "bucket-multi-region",
    Severity.HIGH,
    "replicate the bucket with BucketReplica in the standby stack and set primary.standbyRegion on the primary",
    _check,
)

WEAKENINGS = [
    Weakening("prod", f"backup bucket raptorflow-prod-db-dumps has no copy in another region (no {Label.REPLICA_REGION} "
              f"or {Label.SOURCE_REGION})", "db-dumps-bucket", {f"labels.{Label.REPLICA_REGION}": DELETE}),
    Weakening("prod", "backup bucket raptorflow-prod-db-dumps in us-central1 is copied within the same continent "
              "(us-east4)", "db-dumps-bucket", {f"labels.{Label.REPLICA_REGION}": "us-east4"}),
    Weakening("dr", "replica bucket raptorflow-dr-db-dumps-replica is filled by no transfer job in this stack",
              removed=("db-dumps-replica-transfer", "db-dumps-replica-replication", DATABASE_DUMPS.replica_prefix)),
    Weakening("dr", "replica bucket raptorflow-dr-user-files-replica has no scheduled transfer job (the daily catch-up "
              "copy)", removed=("user-files-replica-transfer",)),
    Weakening("dr", "replica bucket raptorflow-dr-db-dumps-replica is declared event-driven but no replication job "
              "fills it", removed=("db-dumps-replica-replication",)),
    Weakening("prod", "backup bucket raptorflow-prod-db-dumps is in EUR5 copied to europe-west1: a location whose "
              "continent is not known cannot be shown to be on another continent", "db-dumps-bucket",
              {"location": "EUR5"}),
    Weakening("dr", "transfer job db-dumps-replica-transfer runs in project raptorflow-sandbox, not in its sink's "
              "project raptorflow-dr whose agent the plan grants", "db-dumps-replica-transfer",
              {"project": "raptorflow-sandbox"}),
]
