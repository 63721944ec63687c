"""Backups: the scheduled database dumps, the restore check and the zone export."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictInt, model_validator

from core.contracts import BackupKind

from .. import defaults
from .base import Cron, Model, ObjectPrefix, Principals


class BackupSchedule(Model):
    """One scheduled backup: what to dump and when (cron, UTC)."""

    kind: BackupKind = Field(description="`full` (data and schema) or `schema` (schema only).")
    cron: Cron = Field(description="When it runs: a cron schedule in UTC, e.g. '0 2 * * *'.")


class BackupSchedules(Model):
    """When each kind of backup runs (cron, UTC), one Cloud Run Job each. A mapping by kind: a stack file or
    `--set databaseBackup.schedules.full=...` changes one kind and keeps the other's default."""

    full: Cron = Field(defaults.BACKUP_SCHEDULES[BackupKind.FULL], description="The full dump (data and schema).")
    schema_: Cron = Field(defaults.BACKUP_SCHEDULES[BackupKind.SCHEMA], alias=BackupKind.SCHEMA.value,
                          description="The schema-only dump.")

    def entries(self) -> tuple[BackupSchedule, ...]:
        """Each scheduled backup, full first (the order the jobs are created in)."""
        return (BackupSchedule(kind=BackupKind.FULL, cron=self.full),
                BackupSchedule(kind=BackupKind.SCHEMA, cron=self.schema_))


class RestoreCheckSettings(Model):
    """The scheduled restore test: newest full backup into a throwaway database, dropped after."""

    cron: Cron = Field(defaults.RESTORE_CHECK_CRON, description="When it runs (cron, UTC); monthly by default.")
    task_timeout_seconds: StrictInt = Field(
        defaults.RESTORE_CHECK_TASK_TIMEOUT_SECONDS, ge=60, le=86_400, description="Seconds one restore may take."
    )


class DnsExportSettings(Model):
    """A daily export of the Cloudflare zone (BIND) into the dump bucket, run by the backup job."""

    cron: Cron = Field(defaults.DNS_EXPORT_CRON, description="When it runs (cron, UTC); daily 03:00 by default.")
    object_prefix: ObjectPrefix = Field(defaults.DNS_EXPORT_PREFIX, description="Object prefix of the zone exports.")


class DatabaseBackupSettings(Model):
    """Scheduled backups of the Supabase Postgres: a Cloud Run Job per schedule, triggered by Cloud Scheduler."""

    image: str = Field(description="Container image of backup_job/ (e.g. REGION-docker.pkg.dev/PROJECT/REPO/backup-job:TAG).")
    object_prefix: ObjectPrefix = Field(defaults.BACKUP_OBJECT_PREFIX, description="Object prefix of the dumps in the bucket.")
    schedules: BackupSchedules = Field(
        default_factory=BackupSchedules, description="When each kind of backup runs: `full` and `schema`."
    )
    task_timeout_seconds: StrictInt = Field(
        defaults.BACKUP_TASK_TIMEOUT_SECONDS, ge=60, le=86_400, description="Seconds one backup may take."
    )
    task_retries: StrictInt = Field(defaults.BACKUP_TASK_RETRIES, ge=0, le=10, description="Retries of a failed backup task.")
    memory_mib: StrictInt = Field(defaults.BACKUP_MEMORY_MIB, ge=512, le=32_768, description="Memory of a backup task, MiB.")
    cpu: Literal["1", "2", "4", "6", "8"] = Field(
        defaults.BACKUP_CPU, description="vCPUs of a backup task: 1, 2, 4, 6 or 8 (4 need 2048+ MiB, 6 and 8 4096+)."
    )
    manual_runners: Principals = Field(
        (), description="Principals that may run the backup jobs with overridden args (pre-deploy backups)."
    )
    scheduler_retry_count: StrictInt = Field(
        defaults.SCHEDULER_RETRY_COUNT, ge=1, le=5, description="Retries when starting the job fails."
    )
    attempt_deadline_seconds: StrictInt = Field(
        defaults.SCHEDULER_ATTEMPT_DEADLINE_SECONDS, ge=15, le=1_800,
        description="Seconds Cloud Scheduler waits for the start request.",
    )
    restore_check: RestoreCheckSettings = Field(
        default_factory=RestoreCheckSettings, description="The monthly restore test of the newest full dump."
    )
    dns_export: DnsExportSettings | None = Field(
        None, description="Standby only: also export the failover zone daily (token: secret cloudflareExportToken)."
    )

    @model_validator(mode="after")
    def _cloud_run_sizes(self) -> DatabaseBackupSettings:
        low, high = defaults.CLOUD_RUN_MEMORY_MIB_BY_CPU[self.cpu]
        if not low <= self.memory_mib <= high:
            raise ValueError(f"memoryMib {self.memory_mib} does not fit cpu {self.cpu}: Cloud Run jobs with "
                             f"{self.cpu} vCPU take {low}-{high} MiB")
        return self
