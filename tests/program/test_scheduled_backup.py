"""ScheduledDatabaseBackup on the offline plans: schedules in UTC, least privilege, secrets, standby pausing."""

from __future__ import annotations

import pytest

from components import defaults
from core.contracts import BackupKind
from tools.offline import is_secret

RUN_JOB = "gcp:cloudrunv2/job:Job"
SCHEDULE = "gcp:cloudscheduler/job:Job"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
JOB_MEMBER = "gcp:cloudrunv2/jobIamMember:JobIamMember"


def _schedules(plan) -> dict[str, dict]:
    return {r.inputs["name"]: r.inputs for r in plan.of_type(SCHEDULE)}


def test_the_plans_schedules_run_in_utc_with_retries_and_a_deadline(prod_plan):
    schedules = _schedules(prod_plan)
    assert schedules["db-backup-full"]["schedule"] == defaults.BACKUP_SCHEDULES[BackupKind.FULL]
    assert schedules["db-backup-schema"]["schedule"] == defaults.BACKUP_SCHEDULES[BackupKind.SCHEMA]
    assert schedules["db-backup-restore-check"]["schedule"] == defaults.RESTORE_CHECK_CRON, "restore tests run monthly"
    for name, schedule in schedules.items():
        assert schedule["timeZone"] == "UTC", f"{name} must run in UTC"
        assert schedule["retryConfig"]["retryCount"] >= 1, f"{name} needs a retry policy"
        assert schedule["attemptDeadline"] == f"{defaults.SCHEDULER_ATTEMPT_DEADLINE_SECONDS}s", \
            f"{name} needs an attempt deadline"


def test_scheduler_starts_its_job_through_the_run_admin_api_with_an_oauth_token(prod_plan):
    jobs = {r.inputs["name"]: r.inputs for r in prod_plan.of_type(RUN_JOB)}
    for name, schedule in _schedules(prod_plan).items():
        target = schedule["httpTarget"]
        assert target["httpMethod"] == "POST"
        assert target["uri"] == (
            f"https://run.googleapis.com/v2/projects/raptorflow-prod/locations/us-central1/jobs/{name}:run"
        )
        assert name in jobs
        assert target["oauthToken"]["serviceAccountEmail"].startswith("db-backup-scheduler@")
        assert "oidcToken" not in target, "the Run Admin API takes OAuth tokens, not OIDC"


def test_scheduler_identity_may_only_run_the_jobs(prod_plan):
    scheduler = "serviceAccount:db-backup-scheduler@raptorflow-prod.iam.gserviceaccount.com"
    grants = {(m.inputs["name"], m.inputs["role"]) for m in prod_plan.of_type(JOB_MEMBER)
              if m.inputs["member"] == scheduler}
    assert grants == {(name, "roles/run.invoker") for name in _schedules(prod_plan)}
    assert not [m for m in prod_plan.of_type(BUCKET_MEMBER) + prod_plan.of_type(SECRET_MEMBER)
                if m.inputs["member"] == scheduler]


def test_writer_may_only_create_objects_and_read_its_own_secret(prod_plan):
    writer = "serviceAccount:db-backup-writer@raptorflow-prod.iam.gserviceaccount.com"
    bucket_roles = {(m.inputs["bucket"], m.inputs["role"]) for m in prod_plan.of_type(BUCKET_MEMBER)
                    if m.inputs["member"] == writer}
    assert bucket_roles == {("raptorflow-prod-db-dumps", "roles/storage.objectCreator")}
    secret_roles = {(m.inputs["secretId"], m.inputs["role"]) for m in prod_plan.of_type(SECRET_MEMBER)
                    if m.inputs["member"] == writer}
    assert secret_roles == {("projects/raptorflow-prod/secrets/db-backup-database-url",
                             "roles/secretmanager.secretAccessor")}


def test_restore_checker_only_reads_the_bucket_and_the_scratch_secret(prod_plan):
    checker = "serviceAccount:db-backup-checker@raptorflow-prod.iam.gserviceaccount.com"
    grants = {(m.inputs.get("bucket") or m.inputs.get("secretId"), m.inputs["role"])
              for m in prod_plan.of_type(BUCKET_MEMBER) + prod_plan.of_type(SECRET_MEMBER)
              if m.inputs["member"] == checker}
    assert grants == {
        ("raptorflow-prod-db-dumps", "roles/storage.objectViewer"),
        ("projects/raptorflow-prod/secrets/db-backup-scratch-database-url", "roles/secretmanager.secretAccessor"),
    }


def test_jobs_run_the_image_with_the_url_mounted_from_secret_manager(prod_plan):
    jobs = {r.inputs["name"]: r for r in prod_plan.of_type(RUN_JOB)}
    expected_args = {
        "db-backup-full": ["backup", "--kind", "full"],
        "db-backup-schema": ["backup", "--kind", "schema"],
        "db-backup-restore-check": ["restore-check", "--kind", "full"],
    }
    assert set(jobs) == set(expected_args)
    for name, job in jobs.items():
        template = job.inputs["template"]["template"]
        (container,) = template["containers"]
        assert container["image"] == "us-central1-docker.pkg.dev/raptorflow-prod/raptorflow/backup-job:1.0.0"
        assert container["args"] == expected_args[name]
        env = {e["name"]: e["value"] for e in container["envs"]}
        assert env["BACKUP_BUCKET"] == "raptorflow-prod-db-dumps" and env["BACKUP_PREFIX"] == "supabase"
        url_file = env.get("DATABASE_URL_FILE") or env["SCRATCH_DATABASE_URL_FILE"]
        (mount,) = container["volumeMounts"]
        assert url_file == f"{mount['mountPath']}/value"
        (volume,) = template["volumes"]
        assert volume["secret"]["items"] == [{"path": "value", "version": "latest"}]
        assert not any("postgresql://" in str(e.get("value")) for e in container["envs"])
        assert job.inputs["deletionProtection"] is True
        timeout = defaults.RESTORE_CHECK_TASK_TIMEOUT_SECONDS if name == "db-backup-restore-check" \
            else defaults.BACKUP_TASK_TIMEOUT_SECONDS
        assert template["timeout"] == f"{timeout}s" and template["maxRetries"] == defaults.BACKUP_TASK_RETRIES, name


def test_database_urls_are_recorded_as_secrets(prod_plan):
    versions = [v for v in prod_plan.of_type("gcp:secretmanager/secretVersion:SecretVersion")
                if v.name.startswith("db-backup-")]
    assert len(versions) == 2
    for version in versions:
        assert is_secret(version.inputs["secretData"]), f"{version.name} holds a URL in plain text"


def test_a_replaced_secret_version_is_disabled_never_destroyed(prod_plan, dr_plan):
    """A new value (a rotation) replaces the version: the old one is kept, disabled (re-enabled if the new value is
    wrong), not destroyed as pulumi-gcp's default DELETE would."""
    versions = [v for plan in (prod_plan, dr_plan) for v in plan.of_type("gcp:secretmanager/secretVersion:SecretVersion")]
    assert versions
    assert {v.name: v.inputs.get("deletionPolicy") for v in versions} == {v.name: "DISABLE" for v in versions}


def test_secrets_stay_in_the_site_region(prod_plan, dr_plan):
    for plan, region in ((prod_plan, "us-central1"), (dr_plan, "europe-west1")):
        for secret in [s for s in plan.of_type("gcp:secretmanager/secret:Secret") if s.name.startswith("db-backup-")]:
            replicas = secret.inputs["replication"]["userManaged"]["replicas"]
            assert [r["location"] for r in replicas] == [region]
            assert secret.inputs["deletionProtection"] is True


def test_standby_backups_are_paused_until_promoted(dr_plan, make_plan):
    paused = {name: s["paused"] for name, s in _schedules(dr_plan).items()}
    assert paused == {"db-backup-full": True, "db-backup-schema": True, "db-backup-restore-check": False,
                      "db-backup-dns-export": False}
    promoted = make_plan("dr", "raptorflow-dr:promoted=true")
    assert not any(s["paused"] for s in _schedules(promoted).values())


def test_standby_backups_write_into_the_eu_replica(dr_plan):
    writer = "serviceAccount:db-backup-writer@raptorflow-dr.iam.gserviceaccount.com"
    (grant,) = [m for m in dr_plan.of_type(BUCKET_MEMBER) if m.inputs["member"] == writer]
    assert (grant.inputs["bucket"], grant.inputs["role"]) == ("raptorflow-dr-db-dumps-replica",
                                                             "roles/storage.objectCreator")


def test_prod_backups_are_never_paused(prod_plan):
    assert not any(s["paused"] for s in _schedules(prod_plan).values())


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["raptorflow-dr:databaseBackup"].update(schedules={"full": "daily"}),
     "raptorflow-dr:databaseBackup.schedules.full: 'daily' is not a cron schedule"),
    (lambda c: c["raptorflow-dr:databaseBackup"].update(schedules=[{"kind": "full", "cron": "0 2 * * *"},
                                                                   {"kind": "full", "cron": "0 14 * * *"}]),
     "databaseBackup.schedules lists the kind 'full' twice; one schedule per kind"),  # the list before the mapping
    (lambda c: c.update({"raptorflow-dr:databaseUrl": "postgresql://app:hunter2@db/app"}),
     "raptorflow-dr:databaseUrl: is plain text, not a `secure:` value, and holds a secret; set it with "
     "`pulumi config set --secret"),
    (lambda c: c["raptorflow-dr:databaseBackup"].update(schedules={"full": "99 2 * * *"}),
     "'99 2 * * *' is not a usable cron schedule: '99' is outside 0-59"),
], ids=["bad-cron", "two-schedules-of-a-kind", "plain-text-database-url", "minute-out-of-range"])
def test_backup_config_errors(run_cli, stack_file, edit, expected):
    result = run_cli("tools.plan", "prod", "--stack-file", str(stack_file("prod", edit)))
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
