"""ScheduledDatabaseBackup: the backup job (backup_job/) run on a schedule, with least privilege.

Per schedule entry (full at 02:00 UTC, schema at 02:30 UTC by default) a Cloud
Run v2 Job runs `python -m backup_job backup --kind KIND`, and a Cloud
Scheduler job starts it through the Run Admin API (`.../jobs/JOB:run`) with an
OAuth token of a scheduler identity that may run those jobs and nothing else.
A monthly restore check runs `restore-check` into a scratch database.

Identities:
- the writer may only create objects in the dump bucket (no read, replace or
  delete) and read its own database-URL secret;
- the restore checker may only read the dump bucket and its scratch-URL secret;
- the scheduler may only run these jobs.

Database URLs live in Secret Manager (values from `pulumi config set --secret`)
and reach the container as mounted files, never as plain env vars. On the
standby site the same component also runs the daily Cloudflare zone export
(`export-dns`) as the writer identity, with its own read-only token secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from . import defaults
from .stack_config import DatabaseBackupSettings, DnsExportSettings

SECRET_MOUNT_DIRECTORY = "/secrets"
SCHEDULER_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Runs a job with overridden args (run.jobs.run + run.jobs.runWithOverrides), nothing else:
# https://cloud.google.com/run/docs/reference/iam/roles ("Cloud Run Jobs Executor With Overrides").
MANUAL_RUN_ROLE = "roles/run.jobsExecutorWithOverrides"


@dataclass(frozen=True)
class ScheduledDatabaseBackupArgs:
    """Inputs of a ScheduledDatabaseBackup."""

    project: str
    """Google Cloud project of the jobs, identities and secrets."""
    region: str
    """Region of the Cloud Run jobs, the scheduler jobs and the secrets' replica."""
    bucket_name: pulumi.Input[str]
    """The dump bucket the jobs write to (and the restore check reads)."""
    settings: DatabaseBackupSettings
    """Image, schedules, timeouts and retries, as validated stack config."""
    database_url: pulumi.Input[str]
    """libpq URL of the database to back up (a Pulumi secret)."""
    scratch_database_url: pulumi.Input[str]
    """libpq URL of the empty database the restore check restores into (a Pulumi secret)."""
    paused: bool
    """Whether the backup schedules are paused (a standby site that is not promoted)."""
    labels: dict[str, str]
    """Labels on the jobs and secrets."""
    dns_export: DnsExportSettings | None = None
    """Also export this Cloudflare zone daily (the standby site, which owns DNS)."""
    zone_id: str | None = None
    """The Cloudflare zone to export."""
    cloudflare_token: pulumi.Input[str] | None = None
    """A read-only Cloudflare DNS token (a Pulumi secret) for the export."""


class ScheduledDatabaseBackup(pulumi.ComponentResource):
    """Cloud Run Jobs for each backup schedule and the restore check, their schedules, identities and secrets."""

    job_names: pulumi.Output[dict]
    """Cloud Run job name per schedule kind, and `restore-check`."""
    jobs: dict[str, gcp.cloudrunv2.Job]
    """The Cloud Run job per schedule kind, and `restore-check` (for monitoring)."""
    writer_email: pulumi.Output[str]
    """Service account the backups run as."""

    def __init__(self, name: str, args: ScheduledDatabaseBackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:backup:ScheduledDatabaseBackup", name, None, opts)
        self._name, self._args = name, args
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings

        writer = self._account("writer", f"{name}-writer", "Writes database dumps (create-only)")
        checker = self._account("checker", f"{name}-checker", "Reads dumps to test restores")
        scheduler = self._account("scheduler", f"{name}-scheduler", "Starts the backup jobs on schedule")

        gcp.storage.BucketIAMMember(
            f"{name}-writer-create-only", bucket=args.bucket_name, role="roles/storage.objectCreator",
            member=writer.member, opts=child,
        )
        gcp.storage.BucketIAMMember(
            f"{name}-checker-read-only", bucket=args.bucket_name, role="roles/storage.objectViewer",
            member=checker.member, opts=child,
        )
        database_url = self._secret("database-url", args.database_url, writer)
        scratch_url = self._secret("scratch-database-url", args.scratch_database_url, checker)
        self._runners = [
            # Pre-deploy backups run the job with overridden args (`--reason`): run.jobs.runWithOverrides.
            (f"manual-runner-{index}", member) for index, member in enumerate(settings.manual_runners)
        ]

        jobs: dict[str, gcp.cloudrunv2.Job] = {}
        for entry in settings.schedules:
            jobs[entry.kind] = self._scheduled_job(
                role=entry.kind,
                command=["backup", "--kind", entry.kind],
                identity=writer,
                secret=database_url,
                secret_env="DATABASE_URL_FILE",
                timeout_seconds=settings.task_timeout_seconds,
                cron=entry.cron,
                scheduler=scheduler,
                paused=args.paused,
            )
        if args.dns_export is not None:
            if args.zone_id is None or args.cloudflare_token is None:  # stack-config validation guarantees both
                raise ValueError(f"{name}: a DNS export needs zone_id and cloudflare_token")
            # DNS belongs to the standby site, which keeps exporting it whether promoted or not.
            jobs["dns-export"] = self._scheduled_job(
                role="dns-export",
                command=["export-dns", "--zone-id", args.zone_id],
                identity=writer,
                secret=self._secret("cloudflare-token", args.cloudflare_token, writer),
                secret_env="CLOUDFLARE_API_TOKEN_FILE",
                timeout_seconds=600,
                cron=args.dns_export.cron,
                scheduler=scheduler,
                paused=False,
                prefix=args.dns_export.object_prefix,
            )
        # The restore check only reads: it runs on the standby site too, proving the replica restores.
        jobs["restore-check"] = self._scheduled_job(
            role="restore-check",
            command=["restore-check", "--kind", "full"],
            identity=checker,
            secret=scratch_url,
            secret_env="SCRATCH_DATABASE_URL_FILE",
            timeout_seconds=settings.restore_check.task_timeout_seconds,
            cron=settings.restore_check.cron,
            scheduler=scheduler,
            paused=False,
        )

        self.jobs = jobs
        self.job_names = pulumi.Output.all(**{kind: job.name for kind, job in jobs.items()})
        self.writer_email = writer.email
        self.register_outputs({"jobNames": self.job_names, "writerEmail": self.writer_email})

    def _account(self, role: str, account_id: str, description: str) -> gcp.serviceaccount.Account:
        return gcp.serviceaccount.Account(
            f"{self._name}-{role}",
            account_id=account_id,
            project=self._args.project,
            display_name=f"raptorflow-dr: {description}",
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _secret(
        self, role: str, value: pulumi.Input[str], reader: gcp.serviceaccount.Account
    ) -> MountedSecret:
        child = pulumi.ResourceOptions(parent=self)
        secret = gcp.secretmanager.Secret(
            f"{self._name}-{role}",
            secret_id=f"{self._name}-{role}",
            project=self._args.project,
            replication=gcp.secretmanager.SecretReplicationArgs(
                user_managed=gcp.secretmanager.SecretReplicationUserManagedArgs(
                    replicas=[gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(location=self._args.region)]
                )
            ),
            deletion_protection=True,
            labels=self._args.labels,
            opts=child,
        )
        version = gcp.secretmanager.SecretVersion(
            f"{self._name}-{role}-value",
            secret=secret.id,
            secret_data=pulumi.Output.secret(value),
            opts=child,
        )
        grant = gcp.secretmanager.SecretIamMember(
            f"{self._name}-{role}-reader",
            secret_id=secret.id,
            project=self._args.project,
            role="roles/secretmanager.secretAccessor",
            member=reader.member,
            opts=child,
        )
        return MountedSecret(secret, (version, grant))

    def _scheduled_job(
        self,
        *,
        role: str,
        command: list[str],
        identity: gcp.serviceaccount.Account,
        secret: MountedSecret,
        secret_env: str,
        timeout_seconds: int,
        cron: str,
        scheduler: gcp.serviceaccount.Account,
        paused: bool,
        prefix: str | None = None,
    ) -> gcp.cloudrunv2.Job:
        args, settings = self._args, self._args.settings
        child = pulumi.ResourceOptions(parent=self)
        volume = "secret"
        job = gcp.cloudrunv2.Job(
            f"{self._name}-{role}",
            name=f"{self._name}-{role}",
            project=args.project,
            location=args.region,
            deletion_protection=True,
            labels=args.labels,
            template=gcp.cloudrunv2.JobTemplateArgs(
                task_count=1,
                template=gcp.cloudrunv2.JobTemplateTemplateArgs(
                    service_account=identity.email,
                    timeout=f"{timeout_seconds}s",
                    max_retries=settings.task_retries,
                    containers=[
                        gcp.cloudrunv2.JobTemplateTemplateContainerArgs(
                            image=settings.image,
                            args=command,
                            envs=[
                                gcp.cloudrunv2.JobTemplateTemplateContainerEnvArgs(name="BACKUP_BUCKET", value=args.bucket_name),
                                gcp.cloudrunv2.JobTemplateTemplateContainerEnvArgs(
                                    name="BACKUP_PREFIX", value=prefix or settings.object_prefix
                                ),
                                gcp.cloudrunv2.JobTemplateTemplateContainerEnvArgs(
                                    name=secret_env, value=f"{SECRET_MOUNT_DIRECTORY}/{volume}/value"
                                ),
                            ],
                            resources=gcp.cloudrunv2.JobTemplateTemplateContainerResourcesArgs(
                                limits={"cpu": settings.cpu, "memory": f"{settings.memory_mib}Mi"}
                            ),
                            volume_mounts=[
                                gcp.cloudrunv2.JobTemplateTemplateContainerVolumeMountArgs(
                                    name=volume, mount_path=f"{SECRET_MOUNT_DIRECTORY}/{volume}"
                                )
                            ],
                        )
                    ],
                    volumes=[
                        gcp.cloudrunv2.JobTemplateTemplateVolumeArgs(
                            name=volume,
                            secret=gcp.cloudrunv2.JobTemplateTemplateVolumeSecretArgs(
                                secret=secret.secret.secret_id,
                                items=[gcp.cloudrunv2.JobTemplateTemplateVolumeSecretItemArgs(path="value", version="latest")],
                            ),
                        )
                    ],
                ),
            ),
            # Cloud Run resolves the mounted version at create time: "Secret .../versions/latest was not found"
            # or permission denied unless the version and the accessor grant exist first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(secret.ready)),
        )
        may_run = gcp.cloudrunv2.JobIamMember(
            f"{self._name}-{role}-scheduler-may-run",
            name=job.name,
            project=args.project,
            location=args.region,
            role="roles/run.invoker",
            member=scheduler.member,
            opts=child,
        )
        gcp.cloudscheduler.Job(
            f"{self._name}-{role}-schedule",
            name=f"{self._name}-{role}",
            project=args.project,
            region=args.region,
            description=f"Starts {role} ({cron} {defaults.SCHEDULE_TIME_ZONE})",
            schedule=cron,
            time_zone=defaults.SCHEDULE_TIME_ZONE,
            paused=paused,
            attempt_deadline=f"{settings.attempt_deadline_seconds}s",
            retry_config=gcp.cloudscheduler.JobRetryConfigArgs(
                retry_count=settings.scheduler_retry_count,
                min_backoff_duration="30s",
                max_backoff_duration="600s",
                max_doublings=4,
            ),
            http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                http_method="POST",
                uri=job.name.apply(
                    lambda job_name: f"https://run.googleapis.com/v2/projects/{args.project}/locations/"
                    f"{args.region}/jobs/{job_name}:run"
                ),
                oauth_token=gcp.cloudscheduler.JobHttpTargetOauthTokenArgs(
                    service_account_email=scheduler.email, scope=SCHEDULER_SCOPE
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[may_run]),
        )
        if role in [entry.kind for entry in settings.schedules]:
            for slug, member in self._runners:
                gcp.cloudrunv2.JobIamMember(
                    f"{self._name}-{role}-{slug}",
                    name=job.name,
                    project=args.project,
                    location=args.region,
                    role=MANUAL_RUN_ROLE,
                    member=member,
                    opts=child,
                )
        return job


@dataclass(frozen=True)
class MountedSecret:
    """A Secret Manager secret a job mounts, and what must exist before a job can mount it."""

    secret: gcp.secretmanager.Secret
    ready: tuple[pulumi.Resource, ...]
    """The secret's version and its accessor grant."""
