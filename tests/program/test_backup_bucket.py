"""BackupBucket, asserted on the prod plan's recorded inputs."""

from __future__ import annotations

import pytest

from components import defaults
from tools.offline import Plan

BUCKET = "gcp:storage/bucket:Bucket"
KEY = "gcp:kms/cryptoKey:CryptoKey"
KEY_MEMBER = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
DAY = defaults.SECONDS_PER_DAY
DUMP_RETENTION_DAYS = defaults.RETENTION_DAYS["databaseDumps"]


def _dump_bucket(plan: Plan):
    return plan.named("db-dumps-bucket")


def test_backup_bucket_keeps_dumps_the_plans_retention_as_a_seconds_string(prod_plan):
    policy = _dump_bucket(prod_plan).inputs["retentionPolicy"]
    assert policy["retentionPeriod"] == str(DUMP_RETENTION_DAYS * DAY), "retention must be the API's seconds string"
    assert policy["isLocked"] is False, "locking is irreversible and off unless config asks"


def test_backup_bucket_rejects_public_access(prod_plan):
    inputs = _dump_bucket(prod_plan).inputs
    assert inputs["publicAccessPrevention"] == "enforced"
    assert inputs["uniformBucketLevelAccess"] is True
    assert not any(
        m.inputs["member"] in ("allUsers", "allAuthenticatedUsers") for m in prod_plan.of_type(BUCKET_MEMBER)
    )


def test_backup_bucket_encrypts_with_its_own_rotating_key(prod_plan):
    key = prod_plan.named("db-dumps-key")
    bucket = _dump_bucket(prod_plan)
    assert bucket.inputs["encryption"]["defaultKmsKeyName"].endswith(f"/cryptoKeys/{key.inputs['name']}")
    assert key.inputs["rotationPeriod"] == f"{defaults.KMS_ROTATION_DAYS_DEFAULT * DAY}s"
    assert key.inputs["purpose"] == "ENCRYPT_DECRYPT"


def test_storage_service_agent_may_use_the_key(prod_plan):
    (grant,) = [m for m in prod_plan.of_type(KEY_MEMBER) if m.name == "db-dumps-key-storage-agent"]
    assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert grant.inputs["member"].endswith("@gs-project-accounts.iam.gserviceaccount.com")


def test_bucket_key_and_key_ring_are_protected_and_not_force_destroyed(prod_plan):
    for name in ("db-dumps-bucket", "db-dumps-logs", "db-dumps-key", "db-dumps-keyring"):
        assert prod_plan.named(name).protect, f"{name} must be protected from deletion"
    for bucket in prod_plan.of_type(BUCKET):
        assert bucket.inputs["forceDestroy"] is False, f"{bucket.name} must not be force-destroyable"


def test_retention_and_versioning_are_never_both_set(prod_plan):
    bucket = _dump_bucket(prod_plan).inputs
    logs = prod_plan.named("db-dumps-logs").inputs
    assert "versioning" not in bucket, "a bucket with a retention policy cannot have versioning"
    assert logs["versioning"]["enabled"] is True and "retentionPolicy" not in logs


def test_soft_delete_lifecycle_and_labels(prod_plan):
    inputs = _dump_bucket(prod_plan).inputs
    assert inputs["softDeletePolicy"]["retentionDurationSeconds"] == defaults.SOFT_DELETE_DAYS_DEFAULT * DAY
    deletes = [r for r in inputs["lifecycleRules"] if r["action"]["type"] == "Delete"]
    assert [r["condition"]["age"] for r in deletes] == [DUMP_RETENTION_DAYS], "objects go when retention ends, not before"
    assert inputs["labels"]["environment"] == "prod" and inputs["labels"]["managed-by"] == "pulumi"


def test_access_logs_go_to_a_separate_bucket_the_log_writer_may_fill(prod_plan):
    bucket = _dump_bucket(prod_plan).inputs
    logs = prod_plan.named("db-dumps-logs")
    assert bucket["logging"]["logBucket"] == logs.inputs["name"] != bucket["name"]
    writer = prod_plan.named("db-dumps-logs-writer").inputs
    assert (writer["bucket"], writer["role"]) == (logs.inputs["name"], "roles/storage.objectCreator")
    assert writer["member"] == "group:cloud-storage-analytics@google.com"


def test_storage_class_transitions_come_before_deletion(dr_plan):
    rules = dr_plan.named("user-files-replica-sink-bucket").inputs["lifecycleRules"]
    steps = [(r["action"]["type"], r["action"].get("storageClass"), r["condition"]["age"]) for r in rules]
    # The transition is the dr stack file's (ageDays 30); the deletion waits for the plan's retention.
    assert steps == [("SetStorageClass", "NEARLINE", 30), ("Delete", None, defaults.RETENTION_DAYS["userFiles"])]


@pytest.mark.parametrize("days", [1, 7, 365])
def test_retention_days_from_config_become_seconds(make_plan, days):
    plan = make_plan("prod", f"raptorflow-dr:primary.databaseDumps.retentionDays={days}")
    assert _dump_bucket(plan).inputs["retentionPolicy"]["retentionPeriod"] == str(days * DAY)


def test_lock_is_only_set_when_config_asks(make_plan):
    plan = make_plan("prod", "raptorflow-dr:primary.databaseDumps.lockRetention=true")
    assert _dump_bucket(plan).inputs["retentionPolicy"]["isLocked"] is True
