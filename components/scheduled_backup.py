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
and reach the container as mounted files, never as plain env vars. Each job is
the `scheduled_job` building block; the standby site's daily zone export
(`ZoneExport`, not a database backup) is composed from the same block and runs
as the writer identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from core.contracts import BackupKind, Command, JobEnv, JobRun
from core.roles import BACKUP_RUN_WATCHER
from core.schedule import max_interval_hours

from .building_blocks import JobRuntime, JobSpec, ReadableSecret, readable_secret, scheduled_job
from .config import DatabaseBackupSettings, DnsExportSettings
from .image_registry import ImageRegistry
from .monitoring_watches import BackupWatch

DNS_EXPORT_TIMEOUT_SECONDS = 600


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
    role_generation: int = 1
    """Build generation of the custom role it defines (`deploy.generation`)."""
    deletion_protection: bool = True
    """Off only for the teardown run before `pulumi destroy` (`deploy.teardown`): jobs and secrets."""
    registry: ImageRegistry | None = None
    """The site's image repository: the jobs wait until it exists and Cloud Run may pull from it."""


class ScheduledDatabaseBackup(pulumi.ComponentResource):
    """Cloud Run Jobs for each backup schedule and the restore check, their schedules, identities and secrets."""

    job_names: pulumi.Output[dict]
    """Cloud Run job name per schedule kind, and `restore-check`."""
    jobs: dict[str, gcp.cloudrunv2.Job]
    """The Cloud Run job per schedule kind, and `restore-check`."""
    writer: gcp.serviceaccount.Account
    """The identity that may only create objects in the dump bucket."""
    writer_email: pulumi.Output[str]
    """Service account the backups run as."""
    runtime: JobRuntime
    """Where and how the jobs run, for other jobs that write into the same bucket (the zone export)."""
    bucket_name: pulumi.Input[str]
    """The dump bucket."""
    prefix: str
    """The component's name, which prefixes its jobs, identities and secrets."""
    watches: list[BackupWatch]
    """What monitoring should watch: each backup kind (age alert while active) and the restore check."""

    def __init__(self, name: str, args: ScheduledDatabaseBackupArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:backup:ScheduledDatabaseBackup", name, None, opts)
        self.prefix, self._args = name, args
        self.bucket_name = args.bucket_name
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings

        self.writer = writer = self._account("writer", "Writes database dumps (create-only)")
        checker = self._account("checker", "Reads dumps to test restores")
        scheduler = self._account("scheduler", "Starts the backup jobs on schedule")
        gcp.storage.BucketIAMMember(
            f"{name}-writer-create-only", bucket=args.bucket_name, role="roles/storage.objectCreator",
            member=writer.member, opts=child,
        )
        gcp.storage.BucketIAMMember(
            f"{name}-checker-read-only", bucket=args.bucket_name, role="roles/storage.objectViewer",
            member=checker.member, opts=child,
        )
        image_ready = args.registry.ready if args.registry is not None else []
        # Manual runners wait for the run they start (`gcloud run jobs execute --wait`): they also need to read
        # its execution, which roles/run.jobsExecutorWithOverrides does not grant.
        watcher = gcp.projects.IAMCustomRole(
            f"{name}-run-watcher", project=args.project, role_id=BACKUP_RUN_WATCHER.role_id(args.role_generation),
            title=BACKUP_RUN_WATCHER.title, permissions=list(BACKUP_RUN_WATCHER.permissions), opts=child,
        ) if settings.manual_runners else None
        self.runtime = JobRuntime(
            project=args.project, region=args.region, image=settings.image, cpu=settings.cpu,
            memory_mib=settings.memory_mib, retries=settings.task_retries,
            attempt_deadline_seconds=settings.attempt_deadline_seconds,
            scheduler_retry_count=settings.scheduler_retry_count, scheduler=scheduler, labels=args.labels,
            runner_watch_role=watcher.name if watcher else None, deletion_protection=args.deletion_protection,
            image_ready=image_ready,
        )
        env = {JobEnv.BUCKET.value: args.bucket_name, JobEnv.PREFIX.value: settings.object_prefix}
        database_url = self.job_secret("database-url", args.database_url, writer)
        self.jobs = {}
        self.watches = []
        for entry in settings.schedules.entries():
            self.jobs[entry.kind] = self.job(JobSpec(
                role=entry.kind, run=JobRun(Command.BACKUP, BackupKind(entry.kind)), identity=writer,
                secret=database_url,
                secret_env=JobEnv.DATABASE_URL.file, env=env, timeout_seconds=settings.task_timeout_seconds,
                cron=entry.cron, paused=args.paused,
                # Pre-deploy backups run the job with overridden args (`--reason`): run.jobs.runWithOverrides.
                runners=settings.manual_runners,
            ))
            self.watches.append(BackupWatch(
                self.jobs[entry.kind].name, entry.kind, f"{entry.kind} backup", max_interval_hours(entry.cron),
                "backup-failed", Command.BACKUP, active=not args.paused, created=self.jobs[entry.kind].create_time,
            ))
        # The restore check only reads: it runs on the standby site too, proving the replica restores.
        restore = settings.restore_check
        check = Command.RESTORE_CHECK
        self.jobs[check] = self.job(JobSpec(
            role=check, run=JobRun(check, BackupKind.FULL), identity=checker,
            secret=self.job_secret("scratch-database-url", args.scratch_database_url, checker),
            secret_env=JobEnv.SCRATCH_DATABASE_URL.file, env=env, timeout_seconds=restore.task_timeout_seconds,
            cron=restore.cron, paused=False,
        ))
        self.watches.append(BackupWatch(
            self.jobs[check].name, check, "restore check", max_interval_hours(restore.cron),
            "restore-check-failed", check, age_alert=False,
        ))
        self.job_names = pulumi.Output.all(**{kind: job.name for kind, job in self.jobs.items()})
        self.writer_email = writer.email
        self.register_outputs({"jobNames": self.job_names, "writerEmail": self.writer_email})

    def _account(self, role: str, description: str) -> gcp.serviceaccount.Account:
        return gcp.serviceaccount.Account(
            f"{self.prefix}-{role}",
            account_id=f"{self.prefix}-{role}",
            project=self._args.project,
            display_name=f"raptorflow-dr: {description}",
            opts=pulumi.ResourceOptions(parent=self),
        )

    def job(self, spec: JobSpec, parent: pulumi.Resource | None = None,
            aliases: tuple[pulumi.Alias, ...] = ()) -> gcp.cloudrunv2.Job:
        """A scheduled job `<name>-<role>` of this site's backup runtime."""
        return scheduled_job(parent or self, self.prefix, self.runtime, spec, aliases)

    def job_secret(self, role: str, value: pulumi.Input[str], reader: gcp.serviceaccount.Account,
                   parent: pulumi.Resource | None = None, aliases: tuple[pulumi.Alias, ...] = ()) -> ReadableSecret:
        """A secret `<name>-<role>` in this site's region, mounted by a job that runs as `reader`."""
        return readable_secret(
            parent or self, f"{self.prefix}-{role}", secret_id=f"{self.prefix}-{role}", project=self._args.project,
            replicas=[gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(location=self._args.region)],
            value=pulumi.Output.secret(value), readers=[(f"{self.prefix}-{role}-reader", reader.member)],
            labels=self._args.labels, aliases=aliases, deletion_protection=self._args.deletion_protection,
        )


@dataclass(frozen=True)
class ZoneExportArgs:
    """Inputs of a ZoneExport: the zone, its read-only token, when, and the backups whose bucket it writes."""

    zone_id: str
    """The Cloudflare zone to export."""
    api_token: pulumi.Input[str]
    """A read-only Cloudflare DNS token (a Pulumi secret)."""
    settings: DnsExportSettings
    """Schedule and object prefix, as validated stack config."""
    backups: ScheduledDatabaseBackup
    """The site's database backups: the export runs as their create-only writer into the same bucket."""


class ZoneExport(pulumi.ComponentResource):
    """The daily export of the failover zone (BIND, with a manifest) into the dump bucket, as the writer.

    DNS belongs to the standby site, which keeps exporting it whether promoted or not. Its resources keep the
    names they had inside ScheduledDatabaseBackup, and alias their former place there, so moving them here
    replaces nothing."""

    watches: list[BackupWatch]

    def __init__(self, name: str, args: ZoneExportArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:backup:ZoneExport", name, None, opts)
        backups = args.backups
        # Where these resources lived: in the backups component, when it sat at the top of the stack.
        former = (f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::"
                  f"raptorflow:backup:ScheduledDatabaseBackup::{backups.prefix}")
        moved = (pulumi.Alias(parent=former),)
        token = backups.job_secret("cloudflare-token", args.api_token, backups.writer, parent=self, aliases=moved)
        job = backups.job(JobSpec(
            role="dns-export", run=JobRun(Command.EXPORT_DNS, zone_id=args.zone_id), identity=backups.writer,
            secret=token, secret_env=JobEnv.CLOUDFLARE_API_TOKEN.file,
            env={JobEnv.BUCKET.value: backups.bucket_name, JobEnv.PREFIX.value: args.settings.object_prefix},
            timeout_seconds=DNS_EXPORT_TIMEOUT_SECONDS, cron=args.settings.cron, paused=False,
        ), parent=self, aliases=moved)
        self.job_name = job.name
        self.watches = [BackupWatch(job.name, "dns-export", "DNS zone export", max_interval_hours(args.settings.cron),
                                    "dns-export-failed", Command.EXPORT_DNS, created=job.create_time)]
        self.register_outputs({"jobName": self.job_name})
