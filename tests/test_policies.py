"""The policy pack, rule by rule: a compliant fixture passes, each mutated fixture yields exactly its message.

Fixtures are the resources the real program records for the repo's stack files (the compliant case),
and copies of them with one property weakened (the failing cases), evaluated in-process exactly as the
offline plan does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace

import pytest

from policies.raptorflow_policies import POLICIES
from tools.offline import Plan
from tools.policy_check import evaluate

BY_NAME = {policy.name: policy for policy in POLICIES}


def mutate(plan: Plan, name: str, change: Callable[[dict], None] | None = None, **options) -> Plan:
    """A copy of `plan` whose resource `name` has its inputs changed by `change` and/or options replaced."""
    resources = []
    for resource in plan.resources:
        if resource.name == name:
            resource = replace(resource, inputs=copy.deepcopy(resource.inputs), **options)
            if change:
                change(resource.inputs)
        resources.append(resource)
    return replace(plan, resources=resources)


def without(plan: Plan, *names: str) -> Plan:
    """A copy of `plan` without the named resources."""
    return replace(plan, resources=[r for r in plan.resources if r.name not in names])


def setter(path: str, value):
    def change(inputs: dict) -> None:
        node = inputs
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return change


DELETE = object()
BUCKET = "db-dumps-bucket"
DR_SINK = "db-dumps-replica-sink-bucket"

# policy name -> failing cases: (stack, mutation of the plan, exact message)
CASES = {
    "raptorflow-gcs-backup-bucket-uniform-access": [
        ("prod", lambda p: mutate(p, BUCKET, setter("uniformBucketLevelAccess", False)),
         "bucket db-dumps-bucket does not enforce uniform bucket-level access. "
         "Fix: set uniform_bucket_level_access=True on the bucket"),
    ],
    "raptorflow-gcs-bucket-enforce-public-access-prevention": [
        ("prod", lambda p: mutate(p, BUCKET, setter("publicAccessPrevention", "inherited")),
         "bucket db-dumps-bucket has public access prevention 'inherited', not 'enforced'. "
         'Fix: set public_access_prevention="enforced" on the bucket'),
        ("dr", lambda p: mutate(p, "db-dumps-replica-sink-logs", setter("publicAccessPrevention", DELETE)),
         "bucket db-dumps-replica-sink-logs has public access prevention 'unset', not 'enforced'. "
         'Fix: set public_access_prevention="enforced" on the bucket'),
    ],
    "raptorflow-iam-no-public-principals": [
        ("prod", lambda p: mutate(p, "db-backup-checker-read-only", setter("member", "allUsers")),
         "db-backup-checker-read-only grants roles/storage.objectViewer to allUsers. "
         "Fix: grant the role to a named service account or group instead"),
        ("dr", lambda p: mutate(p, "db-backup-full-scheduler-may-run", setter("member", "allAuthenticatedUsers")),
         "db-backup-full-scheduler-may-run grants roles/run.invoker to allAuthenticatedUsers. "
         "Fix: grant the role to a named service account or group instead"),
    ],
    "raptorflow-gcs-backup-bucket-cmek": [
        ("prod", lambda p: mutate(p, BUCKET, setter("encryption", DELETE)),
         "backup bucket db-dumps-bucket has no customer-managed encryption key. "
         "Fix: set encryption.default_kms_key_name to the bucket's Cloud KMS key (BackupBucket does this)"),
    ],
    "raptorflow-kms-key-rotation": [
        ("prod", lambda p: mutate(p, "db-dumps-key", setter("rotationPeriod", "31536000s")),
         "key db-dumps-key rotates every 365 days; at most 90 are allowed. "
         "Fix: set rotation_period (kms.rotationDays in the stack config) to 90 days or less"),
        ("prod", lambda p: mutate(p, "db-dumps-key", setter("rotationPeriod", DELETE)),
         "key db-dumps-key never rotates. "
         "Fix: set rotation_period (kms.rotationDays in the stack config) to 90 days or less"),
    ],
    "raptorflow-gcs-backup-bucket-deletion-protection": [
        ("prod", lambda p: mutate(p, BUCKET, protect=False),
         "backup bucket db-dumps-bucket is not protected (protect=True). "
         "Fix: pass ResourceOptions(protect=True) and force_destroy=False"),
        ("dr", lambda p: mutate(p, DR_SINK, setter("forceDestroy", True)),
         "backup bucket db-dumps-replica-sink-bucket has force_destroy on: `pulumi destroy` would delete its "
         "backups. Fix: pass ResourceOptions(protect=True) and force_destroy=False"),
    ],
    "raptorflow-kms-key-deletion-protection": [
        ("dr", lambda p: mutate(p, "user-files-replica-sink-key", protect=False),
         "key user-files-replica-sink-key is not protected (protect=True): losing it loses every backup it "
         "encrypts. Fix: pass ResourceOptions(protect=True) to the key"),
    ],
    "raptorflow-gcs-backup-bucket-retention": [
        ("prod", lambda p: mutate(p, BUCKET, setter("retentionPolicy.retentionPeriod", "604800")),
         "backup bucket db-dumps-bucket (database-dumps) keeps objects 7 days; at least 30 days are required. "
         "Fix: raise retentionDays in the stack config to at least the minimum"),
        ("dr", lambda p: mutate(p, "user-files-replica-sink-bucket", setter("retentionPolicy.retentionPeriod",
                                                                            "2592000")),
         "backup bucket user-files-replica-sink-bucket (user-files) keeps objects 30 days; at least 90 days are "
         "required. Fix: raise retentionDays in the stack config to at least the minimum"),
    ],
    "raptorflow-gcs-backup-bucket-retention-locked": [
        ("prod", lambda p: p,
         "backup bucket db-dumps-bucket in prod has an unlocked retention policy. Fix: set lockRetention: true "
         "once the retention period is final (it can never be shortened afterwards)"),
    ],
    "raptorflow-gcs-backup-bucket-access-logs": [
        ("prod", lambda p: mutate(p, BUCKET, setter("logging", DELETE)),
         "backup bucket db-dumps-bucket writes no access logs. "
         "Fix: set logging.log_bucket to a separate log bucket (BackupBucket creates one)"),
        ("prod", lambda p: mutate(p, BUCKET, setter("logging.logBucket", "raptorflow-prod-db-dumps")),
         "backup bucket db-dumps-bucket logs into itself. "
         "Fix: set logging.log_bucket to a separate log bucket (BackupBucket creates one)"),
    ],
    "raptorflow-gcs-bucket-versioning": [
        ("prod", lambda p: mutate(p, "db-dumps-logs", setter("versioning", DELETE)),
         "bucket db-dumps-logs has neither a retention policy nor versioning. "
         "Fix: enable versioning, or give the bucket a retention policy"),
    ],
    "raptorflow-gcs-backup-bucket-soft-delete": [
        ("prod", lambda p: mutate(p, BUCKET, setter("softDeletePolicy.retentionDurationSeconds", 0)),
         "backup bucket db-dumps-bucket keeps deleted objects 0 days; at least 7 days are required. "
         "Fix: set softDeleteDays to 7-90 in the stack config"),
    ],
    "raptorflow-gcs-backup-bucket-cross-region-copy": [
        ("prod", lambda p: mutate(p, BUCKET, setter("labels.replica-region", DELETE)),
         "backup bucket raptorflow-prod-db-dumps has no copy in another region (no replica-region or "
         "source-region). Fix: replicate the bucket with BucketReplica in the standby stack and set standbyRegion "
         "on the primary"),
        ("prod", lambda p: mutate(p, BUCKET, setter("labels.replica-region", "us-east4")),
         "backup bucket raptorflow-prod-db-dumps in us-central1 is copied within the same continent (us-east4). "
         "Fix: replicate the bucket with BucketReplica in the standby stack and set standbyRegion on the primary"),
        ("dr", lambda p: without(p, "db-dumps-replica-transfer", "db-dumps-replica-replication"),
         "replica bucket raptorflow-dr-db-dumps-replica is filled by no transfer job in this stack. Fix: replicate "
         "the bucket with BucketReplica in the standby stack and set standbyRegion on the primary"),
    ],
    "raptorflow-gcs-backup-writer-create-only": [
        ("prod", lambda p: mutate(p, "db-backup-writer-create-only", setter("role", "roles/storage.objectUser")),
         "serviceAccount:db-backup-writer@raptorflow-prod.iam.gserviceaccount.com holds roles/storage.objectUser "
         "on backup bucket raptorflow-prod-db-dumps: it could replace or delete backups. Fix: grant "
         "roles/storage.objectCreator (plus roles/storage.legacyBucketReader where listing is needed)"),
    ],
    "raptorflow-iam-no-broad-roles": [
        ("prod", lambda p: mutate(p, "db-backup-writer-create-only", setter("role", "roles/storage.objectAdmin")),
         "db-backup-writer-create-only grants roles/storage.objectAdmin to the job identity "
         "serviceAccount:db-backup-writer@raptorflow-prod.iam.gserviceaccount.com. Fix: grant the narrowest role "
         "the job needs (objectCreator to write backups, objectViewer to read)"),
        ("prod", lambda p: mutate(p, "transfer-source-notifier",
                                  setter("permissions", ["storage.buckets.update", "storage.objects.delete"])),
         "transfer-source-notifier is a custom role with storage.objects.delete beyond what change notifications "
         "need. Fix: grant the narrowest role the job needs (objectCreator to write backups, objectViewer to read)"),
        ("dr", lambda p: mutate(p, "user-files-replica-source-notifier",
                                setter("role", "roles/storage.legacyBucketOwner")),
         "user-files-replica-source-notifier grants roles/storage.legacyBucketOwner to the job identity "
         "serviceAccount:project-559701368449@storage-transfer-service.iam.gserviceaccount.com. Fix: grant the "
         "narrowest role the job needs (objectCreator to write backups, objectViewer to read)"),
    ],
    "raptorflow-sts-transfer-never-deletes": [
        ("dr", lambda p: mutate(p, "db-dumps-replica-transfer",
                                setter("transferSpec.transferOptions.deleteObjectsUniqueInSink", True)),
         "transfer job db-dumps-replica-transfer may delete objects in the sink that the source no longer has "
         "(deleteObjectsUniqueInSink), turning the backup into a mirror of deletions. Fix: set both delete options "
         "to False explicitly in transfer_options"),
        ("dr", lambda p: mutate(p, "user-files-replica-replication",
                                setter("replicationSpec.transferOptions.deleteObjectsFromSourceAfterTransfer", True)),
         "transfer job user-files-replica-replication may delete the source after copying "
         "(deleteObjectsFromSourceAfterTransfer). Fix: set both delete options to False explicitly in "
         "transfer_options"),
    ],
    "raptorflow-scheduler-utc-retry-deadline": [
        ("prod", lambda p: mutate(p, "db-backup-full-schedule", setter("timeZone", "America/New_York")),
         "scheduler job db-backup-full-schedule runs in America/New_York, not UTC. "
         'Fix: set time_zone="UTC", retry_config.retry_count >= 1 and attempt_deadline'),
        ("prod", lambda p: mutate(p, "db-backup-schema-schedule", setter("retryConfig", DELETE)),
         "scheduler job db-backup-schema-schedule has no retry policy. "
         'Fix: set time_zone="UTC", retry_config.retry_count >= 1 and attempt_deadline'),
        ("prod", lambda p: mutate(p, "db-backup-schema-schedule", setter("attemptDeadline", DELETE)),
         "scheduler job db-backup-schema-schedule has no attempt deadline. "
         'Fix: set time_zone="UTC", retry_config.retry_count >= 1 and attempt_deadline'),
    ],
    "raptorflow-monitoring-backup-job-alerts": [
        ("prod", lambda p: without(p, "monitoring-full-age"),
         "backup job db-backup-full has no backup-age alert with a notification channel. Fix: give the stack a "
         "`monitoring` section; SiteMonitoring adds both alerts for every backup job it is handed"),
        ("dr", lambda p: mutate(p, "monitoring-schema-failed", setter("notificationChannels", [])),
         "backup job db-backup-schema has no backup-failed alert with a notification channel. Fix: give the stack "
         "a `monitoring` section; SiteMonitoring adds both alerts for every backup job it is handed"),
    ],
    "raptorflow-monitoring-failover-target-checks": [
        ("dr", lambda p: without(p, "monitoring-check-api-standby"),
         "failover target api-eu.raptorflow.app has no uptime check. Fix: SiteMonitoring adds an uptime check and "
         "alert for each hostname and target it is handed"),
        ("dr", lambda p: without(p, "monitoring-uptime-www-public"),
         "failover target www.raptorflow.app has an uptime check but no alert with a notification channel. Fix: "
         "SiteMonitoring adds an uptime check and alert for each hostname and target it is handed"),
    ],
    "raptorflow-cloudflare-failover-ttl": [
        ("dr", lambda p: mutate(p, "dns-api-record", setter("ttl", 3600)),
         "dns-api-record is DNS-only with TTL 3600; failover records need 60-300 seconds. Fix: set ttlSeconds "
         "between 60 and 300 for DNS-only hostnames; leave it unset for proxied ones"),
        ("dr", lambda p: mutate(p, "dns-app-record", setter("ttl", 300)),
         "dns-app-record is proxied but has TTL 300; proxied records use 1 (auto). Fix: set ttlSeconds between 60 "
         "and 300 for DNS-only hostnames; leave it unset for proxied ones"),
    ],
    "raptorflow-failover-hostname-targets": [
        ("dr", lambda p: mutate(p, "dns-www", setter("standby", "")),
         "hostname www.raptorflow.app lacks a standby target. Fix: give the hostname distinct `primary` and "
         "`standby` targets in the failover config"),
        ("dr", lambda p: mutate(p, "dns-app-record", setter("content", "elsewhere.example.com")),
         "record app.raptorflow.app points at elsewhere.example.com, neither of its targets. Fix: give the hostname "
         "distinct `primary` and `standby` targets in the failover config"),
    ],
    "raptorflow-vercel-secret-env-sensitive": [
        ("dr", lambda p: mutate(p, "vercel-env-supabase-service-role-key", setter("sensitive", False)),
         "Vercel env var SUPABASE_SERVICE_ROLE_KEY looks like a secret by its name but is not sensitive. Fix: list "
         "the variable under vercel.secretVariables and its values in the secret vercelSecretValues"),
        ("dr", lambda p: mutate(p, "vercel-env-supabase-url",
                                setter("value", "postgresql://app:hunter2@db.example.com/app")),
         "Vercel env var SUPABASE_URL holds a secret-looking value but is not sensitive. Fix: list the variable "
         "under vercel.secretVariables and its values in the secret vercelSecretValues"),
    ],
    "raptorflow-labels-required": [
        ("prod", lambda p: mutate(p, BUCKET, setter("labels.environment", DELETE)),
         "db-dumps-bucket lacks the labels environment. Fix: pass the stack's labels (config `labels`) to the "
         "resource"),
    ],
    "raptorflow-objectives-rpo": [
        ("prod", lambda p: mutate(p, "recovery", setter("pitr.enabled", False)),
         "database corruption: worst-case data loss 1440 min exceeds the 60 min objective (database: full dump "
         "every 24 h (0 2 * * *); add an hourly schedule or declare PITR). Fix: shorten the schedule, add "
         "event-driven replication, or declare the capability (PITR, a replica) you have"),
        ("dr", lambda p: without(p, "user-files-replica-replication"),
         "regional outage: worst-case data loss 1440 min exceeds the 15 min objective (user files: user-files "
         "copied every 24 h; add event-driven replication). Fix: shorten the schedule, add event-driven "
         "replication, or declare the capability (PITR, a replica) you have"),
    ],
}

# The repo's plans are the compliant fixtures; a rule that objects to them by design gets its compliant variant.
COMPLIANT = {"raptorflow-gcs-backup-bucket-retention-locked": ("prod", ("raptorflow-dr:databaseDumps.lockRetention=true",))}


def test_every_rule_has_failing_fixtures():
    assert set(CASES) == set(BY_NAME), f"rules without fixtures: {sorted(set(BY_NAME) - set(CASES))}"
    assert all(CASES[name] for name in CASES)


def test_pack_mirrors_the_22_rules_with_metadata():
    assert len(POLICIES) == 24, "22 rules; #6 and #7 each split into two policies"
    for policy in POLICIES:
        assert policy.name.startswith("raptorflow-") and policy.name == policy.name.lower()
        assert policy.enforcement_level is not None and policy.severity is not None
        assert "Mirrors " in policy.description and policy.remediation_steps and policy.framework is not None and policy.framework.reference
    advisory = {p.name for p in POLICIES if p.enforcement_level is not None and p.enforcement_level.value == "advisory"}
    assert advisory == {"raptorflow-gcs-backup-bucket-retention-locked", "raptorflow-labels-required"}


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_compliant_fixtures_pass(make_plan, name):
    stacks = [COMPLIANT[name]] if name in COMPLIANT else [("prod", ()), ("dr", ())]
    for stack, overrides in stacks:
        found = evaluate(make_plan(stack, *overrides), [BY_NAME[name]])
        assert found == [], f"{name} objects to the compliant {stack} plan: {[v.message for v in found]}"


@pytest.mark.parametrize("name, case", [(name, index) for name in sorted(CASES) for index in range(len(CASES[name]))])
def test_mutated_fixtures_yield_exactly_their_message(make_plan, name, case):
    stack, weaken, expected = CASES[name][case]
    found = evaluate(weaken(make_plan(stack)), [BY_NAME[name]])
    assert [v.message for v in found] == [expected]


def test_policy_config_changes_thresholds(prod_plan):
    from tools.policy_check import evaluate as run

    stricter = {"raptorflow-kms-key-rotation": {"maxRotationDays": 30}}
    found = run(prod_plan, [BY_NAME["raptorflow-kms-key-rotation"]], overrides=stricter)
    assert {v.resource for v in found} == {"db-dumps-key", "config-us-central1-key", "config-europe-west1-key"}
    assert any(v.message.startswith("key db-dumps-key rotates every 90 days; at most 30 are allowed.") for v in found)
