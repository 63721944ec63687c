"""The building blocks alone: a rotating key, a readable secret, a scheduled job - with made-up inputs."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from components.building_blocks import (
    MANUAL_RUN_ROLE,
    JobRuntime,
    JobSpec,
    readable_secret,
    rotating_key,
    scheduled_job,
)
from core.contracts import Command, JobRun, Label
from core.limits import SECONDS_PER_DAY

from .conftest import depends_on

LABELS = {"environment": "test"}


class Holder(pulumi.ComponentResource):
    def __init__(self, name: str):
        super().__init__("test:index:Holder", name)


def test_a_rotating_key_is_protected_rotates_and_lets_its_agent_in(record):
    def build():
        rotating_key(Holder("h"), "vault-eu", ring_name="ring", key_name="key", grant_name="vault-eu-agent",
                     project="p-123456", location="europe-west4", rotation_days=30, labels=LABELS,
                     agent_member="serviceAccount:agent@example.iam.gserviceaccount.com")

    plan = record(build)
    ring, key, grant = plan.named("vault-eu-keyring"), plan.named("vault-eu-key"), plan.named("vault-eu-agent")
    assert ring.protect and key.protect, "destroying a key loses what it encrypts"
    assert key.inputs["rotationPeriod"] == f"{30 * SECONDS_PER_DAY}s"
    assert ring.inputs["location"] == "europe-west4" and key.inputs["keyRing"].endswith("/keyRings/ring")
    assert grant.inputs["role"] == "roles/cloudkms.cryptoKeyEncrypterDecrypter"
    assert depends_on(plan, "vault-eu-agent", "vault-eu-key")


def test_a_readable_secret_holds_its_value_as_a_secret_and_grants_each_reader(record):
    def build():
        readable_secret(
            Holder("h"), "app-token", secret_id="app-token", project="p-123456",
            replicas=[gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(location="us-east1")],
            value=pulumi.Output.secret("s3cr3t"), labels=LABELS,
            readers=[("app-token-reader-0", "serviceAccount:a@p.iam.gserviceaccount.com"),
                     ("app-token-reader-1", "group:ops@example.com")],
        )

    plan = record(build)
    version = plan.named("app-token-value")
    assert version.inputs["secretData"] != "s3cr3t", "the value is recorded as a secret, never in plain text"
    assert plan.named("app-token").inputs["deletionProtection"] is True
    members = {plan.named(f"app-token-reader-{i}").inputs["member"] for i in (0, 1)}
    assert members == {"serviceAccount:a@p.iam.gserviceaccount.com", "group:ops@example.com"}
    assert all(plan.named(f"app-token-reader-{i}").inputs["role"] == "roles/secretmanager.secretAccessor"
               for i in (0, 1))


def test_a_scheduled_job_mounts_its_secret_and_starts_only_after_it_may(record):
    def build():
        holder = Holder("h")
        account = gcp.serviceaccount.Account("runner", account_id="runner", opts=pulumi.ResourceOptions(parent=holder))
        starter = gcp.serviceaccount.Account("starter", account_id="starter", opts=pulumi.ResourceOptions(parent=holder))
        secret = readable_secret(
            holder, "job-url", secret_id="job-url", project="p-123456",
            replicas=[gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(location="us-east1")],
            value=pulumi.Output.secret("postgresql://x"), readers=[("job-url-reader", account.member)], labels=LABELS,
        )
        runtime = JobRuntime(project="p-123456", region="us-east1", image="img:1", cpu="2", memory_mib=1024, retries=0,
                             attempt_deadline_seconds=60, scheduler_retry_count=2, scheduler=starter, labels=LABELS)
        scheduled_job(holder, "nightly", runtime, JobSpec(
            role="export", run=JobRun(Command.EXPORT_DNS, zone_id="z-1"), identity=account, secret=secret, secret_env="URL_FILE",
            env={"TARGET": "t"}, timeout_seconds=120, cron="15 1 * * *", paused=True,
            runners=["group:ops@example.com"],
        ))

    plan = record(build)
    job, schedule = plan.named("nightly-export"), plan.named("nightly-export-schedule")
    container = job.inputs["template"]["template"]["containers"][0]
    assert {env["name"]: env["value"] for env in container["envs"]} == {"TARGET": "t", "URL_FILE": "/secrets/secret/value"}
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "1024Mi"}
    assert container["args"] == ["export-dns", "--zone-id", "z-1"], "the job runs what its JobRun says"
    assert job.inputs["labels"] == {**LABELS, Label.JOB_COMMAND: "export-dns"}, \
        "the job's labels say what it runs, beside the site's"
    assert depends_on(plan, "nightly-export", "job-url-value") and depends_on(plan, "nightly-export", "job-url-reader"), \
        "Cloud Run resolves the mounted version at create time"
    assert depends_on(plan, "nightly-export-schedule", "nightly-export-scheduler-may-run")
    assert schedule.inputs["paused"] is True and schedule.inputs["schedule"] == "15 1 * * *"
    assert schedule.inputs["timeZone"] == "UTC" and schedule.inputs["retryConfig"]["retryCount"] == 2
    assert schedule.inputs["httpTarget"]["uri"] == \
        "https://run.googleapis.com/v2/projects/p-123456/locations/us-east1/jobs/nightly-export:run"
    assert plan.named("nightly-export-manual-runner-0").inputs["role"] == MANUAL_RUN_ROLE
