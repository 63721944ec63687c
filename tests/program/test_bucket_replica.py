"""BucketReplica and the dr stack: EU copies of prod's buckets, kept by transfer jobs that never delete."""

from __future__ import annotations

import pytest

from components import defaults
from core.regions import GCP_REGIONS

TRANSFER = "gcp:storage/transferJob:TransferJob"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
REPLICAS = {"db-dumps-replica": ("databaseDumpsBucket", defaults.RETENTION_DAYS["databaseDumps"]),
            "user-files-replica": ("userFilesBucket", defaults.RETENTION_DAYS["userFiles"])}


@pytest.mark.parametrize("replica", sorted(REPLICAS))
def test_replica_lives_in_europe_and_keeps_the_plans_retention(dr_plan, replica):
    _, days = REPLICAS[replica]
    bucket = dr_plan.named(f"{replica}-sink-bucket").inputs
    assert GCP_REGIONS[bucket["location"]] == "europe", f"{replica} must be in an EU region"
    assert bucket["retentionPolicy"]["retentionPeriod"] == str(days * defaults.SECONDS_PER_DAY)
    assert bucket["publicAccessPrevention"] == "enforced"
    assert dr_plan.named(f"{replica}-sink-bucket").protect


@pytest.mark.parametrize("replica", sorted(REPLICAS))
def test_transfer_copies_the_prod_bucket_into_the_replica(dr_plan, prod_plan, replica):
    output, _ = REPLICAS[replica]
    spec = dr_plan.named(f"{replica}-transfer").inputs["transferSpec"]
    assert spec["gcsDataSource"]["bucketName"] == prod_plan.outputs[output]
    assert spec["gcsDataSink"]["bucketName"] == dr_plan.named(f"{replica}-sink-bucket").inputs["name"]


def test_prod_and_dr_buckets_are_on_different_continents(dr_plan, prod_plan):
    assert GCP_REGIONS[prod_plan.outputs["region"]] == "north-america"
    assert GCP_REGIONS[dr_plan.outputs["region"]] == "europe"


def test_transfer_jobs_never_delete_or_overwrite(dr_plan):
    jobs = dr_plan.of_type(TRANSFER)
    assert len(jobs) == 4, "a daily full sync and an event-driven replication per replica"
    for job in jobs:
        spec = job.inputs.get("transferSpec") or job.inputs["replicationSpec"]
        options = spec["transferOptions"]
        assert options["deleteObjectsUniqueInSink"] is False, f"{job.name} would mirror deletions"
        assert options["deleteObjectsFromSourceAfterTransfer"] is False, f"{job.name} would delete the source"
        assert options["overwriteWhen"] == "NEVER", f"{job.name} would replace backups"


def test_transfer_runs_daily_from_the_configured_utc_time(dr_plan, make_plan):
    schedule = dr_plan.named("db-dumps-replica-transfer").inputs["schedule"]
    assert schedule["repeatInterval"] == f"{defaults.SECONDS_PER_DAY}s"
    assert (schedule["startTimeOfDay"]["hours"], schedule["startTimeOfDay"]["minutes"]) == (3, 0), \
        "the daily sync starts after the 02:00 dump"
    later = make_plan("dr", "raptorflow-dr:standby.replicas.databaseDumps.transfer.startTimeUtc=03:45")
    time_of_day = later.named("db-dumps-replica-transfer").inputs["schedule"]["startTimeOfDay"]
    assert (time_of_day["hours"], time_of_day["minutes"]) == (3, 45)


@pytest.mark.parametrize("replica", sorted(REPLICAS))
def test_transfer_agent_reads_the_source_and_only_creates_in_the_sink(dr_plan, prod_plan, replica):
    output, _ = REPLICAS[replica]
    sink = dr_plan.named(f"{replica}-sink-bucket").inputs["name"]
    grants = {
        (m.inputs["bucket"], m.inputs["role"])
        for m in dr_plan.of_type(BUCKET_MEMBER)
        if m.inputs["member"].endswith("@storage-transfer-service.iam.gserviceaccount.com")
        and m.name.startswith(replica)
    }
    source = prod_plan.outputs[output]
    assert grants == {
        (source, "roles/storage.objectViewer"),
        (source, "roles/storage.legacyBucketReader"),
        # Event-driven replication sets up change notifications on the source: buckets.get/update only.
        (source, prod_plan.outputs["transferSourceNotifierRole"]),
        (sink, "roles/storage.objectCreator"),
        # overwriteWhen NEVER reads the sink's object before deciding: storage.objects.get.
        (sink, "roles/storage.objectViewer"),
        (sink, "roles/storage.legacyBucketReader"),
    }


def test_replica_keys_are_usable_by_the_dr_storage_agent(dr_plan):
    for replica in REPLICAS:
        grant = dr_plan.named(f"{replica}-sink-key-storage-agent").inputs
        assert grant["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
        assert grant["cryptoKeyId"].startswith("projects/raptorflow-dr/locations/europe-west1/")


def test_dr_exports_replica_names_urls_and_keys(dr_plan):
    for prefix in ("databaseDumps", "userFiles"):
        assert dr_plan.outputs[f"{prefix}ReplicaBucketUrl"] == f"gs://{dr_plan.outputs[f'{prefix}ReplicaBucket']}"
        assert "/cryptoKeys/" in dr_plan.outputs[f"{prefix}ReplicaKmsKey"]


def test_prod_creates_no_replica_and_dr_no_primary_bucket(prod_plan, dr_plan):
    assert not prod_plan.of_type(TRANSFER)
    assert not any(r.name.startswith("db-dumps-") and "replica" not in r.name for r in dr_plan.resources)


@pytest.mark.parametrize("replica", sorted(REPLICAS))
def test_event_driven_replication_copies_new_objects_between_the_same_buckets(dr_plan, replica):
    daily = dr_plan.named(f"{replica}-transfer").inputs["transferSpec"]
    live = dr_plan.named(f"{replica}-replication").inputs["replicationSpec"]
    assert live["gcsDataSource"] == daily["gcsDataSource"] and live["gcsDataSink"] == daily["gcsDataSink"]


def test_event_driven_replication_is_off_unless_asked(make_plan):
    plan = make_plan("dr", "raptorflow-dr:standby.replicas.userFiles.transfer.eventDriven=false")
    names = {job.name for job in plan.of_type(TRANSFER)}
    assert "user-files-replica-replication" not in names and "db-dumps-replica-replication" in names
