"""The stack config model: every key a stack file may set, validated once.

`Pulumi.<stack>.yaml` holds the project's keys under the `raptorflow-dr:`
namespace (structured values are objects, as `pulumi config set --path` writes
them). `load_stack_config` reads them from the Pulumi runtime, validates them
against `StackConfig` and raises `ConfigError` - a `pulumi.RunError`, so the
engine and the offline plan print it without a traceback - naming the stack
file, the key and what is allowed.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from core.paths import lookup
from core.regions import GCP_REGIONS
from core.schedule import max_interval_hours

from . import defaults

NAMESPACE = defaults.PROJECT_NAME

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")
_TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_OBJECT_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")
_MEMBER = re.compile(r"^(serviceAccount|group|user):[^@\s]+@[^@\s]+$")


def _check_object_prefix(value: str) -> str:
    if not _OBJECT_PREFIX.match(value) or any(part in (".", "..") for part in value.split("/")):
        raise ValueError(f"'{value[:100]}' is not an object prefix: letters, digits, '.', '_', '-' and '/' between "
                         "parts, without '.' or '..' parts or a leading '/'")
    return value


def _check_members(value: tuple[str, ...]) -> tuple[str, ...]:
    for member in value:
        if not _MEMBER.match(member):
            raise ValueError(f"'{member}' is not an IAM principal such as serviceAccount:deploy@PROJECT.iam.gserviceaccount.com")
    return value


class ConfigError(pulumi.RunError):
    """Invalid stack config: the message names the stack file, each bad key and what is allowed."""


class _Model(BaseModel):
    """Base of every config section: camelCase keys as in the YAML, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


def _check_region(value: str) -> str:
    if value not in GCP_REGIONS:
        close = difflib.get_close_matches(value, GCP_REGIONS, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"one of {', '.join(sorted(GCP_REGIONS))}"
        raise ValueError(f"'{value}' is not a Google Cloud region; {hint}")
    return value


class GcpSettings(_Model):
    """Where the stack's Google Cloud resources live."""

    project: str = Field(description="Google Cloud project id that holds this site's resources.")
    region: str = Field(description="Region of the site's buckets, key rings and jobs (e.g. us-central1).")

    @field_validator("project")
    @classmethod
    def _project_id(cls, value: str) -> str:
        if not _PROJECT_ID.match(value):
            raise ValueError(
                f"'{value}' is not a Google Cloud project id: 6-30 characters, lowercase letters, "
                "digits and hyphens, starting with a letter"
            )
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return _check_region(value)

    @property
    def continent(self) -> str:
        """The continent of `region`, for cross-continent checks."""
        return GCP_REGIONS[self.region]


class KmsSettings(_Model):
    """Customer-managed encryption keys of the backup buckets."""

    rotation_days: StrictInt = Field(
        defaults.KMS_ROTATION_DAYS_DEFAULT,
        ge=1,
        le=defaults.KMS_ROTATION_DAYS_MAX,
        description="Days between automatic key rotations (at most 90).",
    )


class StorageClassTransition(_Model):
    """Move objects to a colder storage class once they are this old."""

    age_days: StrictInt = Field(ge=1, description="Object age in days at which the move happens.")
    storage_class: Literal["NEARLINE", "COLDLINE", "ARCHIVE"] = Field(description="The colder class.")


_COLDNESS = {"NEARLINE": 1, "COLDLINE": 2, "ARCHIVE": 3}


class BackupBucketSettings(_Model):
    """A backup bucket: how long it keeps objects and how it guards them."""

    retention_days: StrictInt = Field(
        ge=1, le=defaults.RETENTION_DAYS_MAX, description="Days every object is kept and cannot be deleted or replaced."
    )
    lock_retention: bool = Field(False, description="Lock the retention policy. Irreversible: only when compliance asks.")
    soft_delete_days: StrictInt = Field(
        defaults.SOFT_DELETE_DAYS_DEFAULT,
        ge=defaults.SOFT_DELETE_DAYS_MIN,
        le=defaults.SOFT_DELETE_DAYS_MAX,
        description="Days a deleted object can still be restored (7-90).",
    )
    storage_class_transitions: tuple[StorageClassTransition, ...] = Field(
        (), description="Colder storage classes after given ages, youngest first."
    )
    access_log_retention_days: StrictInt = Field(
        defaults.ACCESS_LOG_RETENTION_DAYS, ge=1, description="Days the bucket's access logs are kept."
    )

    @model_validator(mode="after")
    def _transitions_in_order(self) -> BackupBucketSettings:
        previous_age, previous_cold = 0, 0
        for index, step in enumerate(self.storage_class_transitions):
            if step.age_days <= previous_age or _COLDNESS[step.storage_class] <= previous_cold:
                raise ValueError(
                    f"storageClassTransitions[{index}]: each step must be older and colder than the one before"
                )
            if step.age_days >= self.retention_days:
                raise ValueError(
                    f"storageClassTransitions[{index}]: ageDays {step.age_days} must be below "
                    f"retentionDays {self.retention_days}, when objects are deleted"
                )
            previous_age, previous_cold = step.age_days, _COLDNESS[step.storage_class]
        return self


class DatabaseDumpBucketSettings(BackupBucketSettings):
    """The bucket of database dumps (the plan keeps them 30 days)."""

    retention_days: StrictInt = Field(
        defaults.RETENTION_DAYS["databaseDumps"], ge=1, le=defaults.RETENTION_DAYS_MAX, description="Days dumps are kept."
    )


class TransferSettings(_Model):
    """The Storage Transfer Service job that keeps a replica in sync."""

    start_time_utc: str = Field(
        defaults.TRANSFER_START_TIME_UTC, description="Daily start of the full sync, HH:MM in UTC."
    )
    event_driven: bool = Field(
        False, description="Also replicate new objects as they arrive (Storage Transfer event-driven replication)."
    )

    @field_validator("start_time_utc")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        if not _TIME_OF_DAY.match(value):
            raise ValueError(f"'{value}' is not a time of day; use HH:MM (24 h, UTC), e.g. 02:00")
        return value

    @property
    def hours(self) -> int:
        """Hour of `start_time_utc`."""
        return int(self.start_time_utc[:2])

    @property
    def minutes(self) -> int:
        """Minute of `start_time_utc`."""
        return int(self.start_time_utc[3:])

    @property
    def cron(self) -> str:
        """The daily schedule as cron (UTC)."""
        return f"{self.minutes} {self.hours} * * *"


class DatabaseDumpReplicaSettings(DatabaseDumpBucketSettings):
    """The standby site's copy of the database-dump bucket."""

    transfer: TransferSettings = Field(default_factory=TransferSettings, description="How the copy is kept.")


class UserFilesReplicaSettings(BackupBucketSettings):
    """The standby site's copy of the user-files bucket (the plan keeps it 90 days)."""

    retention_days: StrictInt = Field(
        defaults.RETENTION_DAYS["userFiles"], ge=1, le=defaults.RETENTION_DAYS_MAX, description="Days copies are kept."
    )
    transfer: TransferSettings = Field(default_factory=TransferSettings, description="How the copy is kept.")


_CRON_FIELD = re.compile(r"^[0-9*/,-]+$")


def _check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise ValueError(
            f"'{value}' is not a cron schedule: five fields (minute hour day-of-month month day-of-week) "
            "of digits, '*', '/', ',' and '-', e.g. '0 2 * * *'"
        )
    try:
        max_interval_hours(value)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a usable cron schedule: {exc}") from None
    return value


class BackupSchedule(_Model):
    """One scheduled backup: what to dump and when (cron, UTC)."""

    kind: Literal["full", "schema"] = Field(description="`full` (data and schema) or `schema` (schema only).")
    cron: str = Field(description="When it runs: a cron schedule in UTC, e.g. '0 2 * * *'.")

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)


class RestoreCheckSettings(_Model):
    """The scheduled restore test: newest full backup into a throwaway database, dropped after."""

    cron: str = Field(defaults.RESTORE_CHECK_CRON, description="When it runs (cron, UTC); monthly by default.")
    task_timeout_seconds: StrictInt = Field(
        defaults.RESTORE_CHECK_TASK_TIMEOUT_SECONDS, ge=60, le=86_400, description="Seconds one restore may take."
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)


class DnsExportSettings(_Model):
    """A daily export of the Cloudflare zone (BIND) into the dump bucket, run by the backup job."""

    cron: str = Field(defaults.DNS_EXPORT_CRON, description="When it runs (cron, UTC); daily 03:00 by default.")
    object_prefix: str = Field(defaults.DNS_EXPORT_PREFIX, description="Object prefix of the zone exports.")

    @field_validator("object_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _check_object_prefix(value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)


class DatabaseBackupSettings(_Model):
    """Scheduled backups of the Supabase Postgres: a Cloud Run Job per schedule, triggered by Cloud Scheduler."""

    image: str = Field(description="Container image of backup_job/ (e.g. REGION-docker.pkg.dev/PROJECT/REPO/backup-job:TAG).")
    object_prefix: str = Field(defaults.BACKUP_OBJECT_PREFIX, description="Object prefix of the dumps in the bucket.")
    schedules: tuple[BackupSchedule, ...] = Field(
        tuple(BackupSchedule(**entry) for entry in defaults.BACKUP_SCHEDULES),
        min_length=1,
        description="The scheduled backups, one Cloud Run Job each (one per kind).",
    )
    task_timeout_seconds: StrictInt = Field(
        defaults.BACKUP_TASK_TIMEOUT_SECONDS, ge=60, le=86_400, description="Seconds one backup may take."
    )
    task_retries: StrictInt = Field(defaults.BACKUP_TASK_RETRIES, ge=0, le=10, description="Retries of a failed backup task.")
    memory_mib: StrictInt = Field(defaults.BACKUP_MEMORY_MIB, ge=512, le=32_768, description="Memory of a backup task, MiB.")
    cpu: Literal["1", "2", "4", "6", "8"] = Field(
        defaults.BACKUP_CPU, description="vCPUs of a backup task: 1, 2, 4, 6 or 8 (4 need 2048+ MiB, 6 and 8 4096+)."
    )
    manual_runners: tuple[str, ...] = Field(
        (), description="Principals that may run the backup jobs with overridden args (pre-deploy backups)."
    )
    scheduler_retry_count: StrictInt = Field(
        defaults.SCHEDULER_RETRY_COUNT, ge=1, le=5, description="Retries when starting the job fails."
    )
    attempt_deadline_seconds: StrictInt = Field(
        defaults.SCHEDULER_ATTEMPT_DEADLINE_SECONDS, ge=15, le=1_800,
        description="Seconds Cloud Scheduler waits for the start request.",
    )
    restore_check: RestoreCheckSettings = Field(default_factory=RestoreCheckSettings)
    dns_export: DnsExportSettings | None = Field(
        None, description="Standby only: also export the failover zone daily (token: secret cloudflareExportToken)."
    )

    @field_validator("object_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return _check_object_prefix(value)

    @field_validator("manual_runners")
    @classmethod
    def _runners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_members(value)

    @model_validator(mode="after")
    def _cloud_run_sizes(self) -> DatabaseBackupSettings:
        low, high = defaults.CLOUD_RUN_MEMORY_MIB_BY_CPU[self.cpu]
        if not low <= self.memory_mib <= high:
            raise ValueError(f"memoryMib {self.memory_mib} does not fit cpu {self.cpu}: Cloud Run jobs with "
                             f"{self.cpu} vCPU take {low}-{high} MiB")
        return self

    @field_validator("schedules")
    @classmethod
    def _one_per_kind(cls, value: tuple[BackupSchedule, ...]) -> tuple[BackupSchedule, ...]:
        kinds = [entry.kind for entry in value]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"one schedule per kind; got kinds {kinds}")
        return value


_HOST_LABEL = re.compile(r"^(@|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _check_target(record_type: str, value: str, field: str) -> None:
    if record_type == "CNAME":
        if not _HOSTNAME.match(value):
            raise ValueError(f"{field} '{value}' is not a hostname, as a CNAME record needs")
        return
    version = 4 if record_type == "A" else 6
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise ValueError(f"{field} '{value}' is not an IPv{version} address, as an {record_type} record needs")


class FailoverHostname(_Model):
    """A hostname that moves between the sites: its record points at the active site's target."""

    name: str = Field(description="Record name in the zone: '@' for the apex, or a label such as 'app'.")
    type: Literal["A", "AAAA", "CNAME"] = Field("CNAME", description="Record type of both targets.")
    proxied: bool = Field(True, description="Through Cloudflare's proxy (switches instantly at the edge).")
    ttl_seconds: int | None = Field(
        None, description="DNS-only records: 60-300 seconds (default 60). Proxied records are always 1 (auto)."
    )
    primary: str = Field(description="Target on the primary site (IP for A/AAAA, hostname for CNAME).")
    standby: str = Field(description="Target on the standby site.")
    existing_record_id: str | None = Field(
        None, description="Id of the record that already serves this name in Cloudflare: adopted (imported), "
                          "not created. Find it with the Cloudflare API (GET zones/ZONE/dns_records?name=...).",
    )

    @field_validator("existing_record_id")
    @classmethod
    def _record_id(cls, value: str | None) -> str | None:
        if value is not None and not _CLOUDFLARE_ID.match(value):
            raise ValueError(f"'{value}' is not a Cloudflare record id (32 hex characters)")
        return value

    @field_validator("name")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _HOST_LABEL.match(value):
            raise ValueError(f"'{value}' is not a record name: '@' or one lowercase DNS label such as 'app'")
        return value

    @model_validator(mode="after")
    def _cloudflare_rules(self) -> FailoverHostname:
        _check_target(self.type, self.primary, "primary")
        _check_target(self.type, self.standby, "standby")
        if self.primary == self.standby:
            raise ValueError(f"'{self.name}': primary and standby are the same target; failover would change nothing")
        if self.proxied and self.ttl_seconds not in (None, 1):
            raise ValueError(
                f"'{self.name}': proxied records have TTL 1 (auto) in Cloudflare; drop ttlSeconds "
                f"({self.ttl_seconds}) or set proxied: false"
            )
        if not self.proxied and self.ttl_seconds is not None and not (
            defaults.DNS_TTL_MIN_SECONDS <= self.ttl_seconds <= defaults.DNS_TTL_MAX_SECONDS
        ):
            raise ValueError(
                f"'{self.name}': ttlSeconds {self.ttl_seconds} is outside {defaults.DNS_TTL_MIN_SECONDS}-"
                f"{defaults.DNS_TTL_MAX_SECONDS}: Cloudflare's minimum for DNS-only records is 60 and the "
                "plan's ceiling is 300"
            )
        return self

    @property
    def ttl(self) -> int:
        """The TTL Cloudflare gets: 1 (auto) when proxied, else the configured or default seconds."""
        return 1 if self.proxied else (self.ttl_seconds or defaults.DNS_TTL_DEFAULT_SECONDS)

    def fqdn(self, domain: str) -> str:
        """The full hostname in `domain`."""
        return domain if self.name == "@" else f"{self.name}.{domain}"

    @property
    def slug(self) -> str:
        """The name as it appears in resource names ('apex' for '@')."""
        return "apex" if self.name == "@" else self.name


class LoadBalancerSettings(_Model):
    """Cloudflare load balancing: health-checked pools per site, the active site first."""

    account_id: str = Field(description="Cloudflare account id that owns monitors and pools.")
    monitor_interval_seconds: StrictInt = Field(
        defaults.LB_MONITOR_INTERVAL_SECONDS, ge=10, le=3_600, description="Seconds between health checks."
    )
    monitor_retries: StrictInt = Field(defaults.LB_MONITOR_RETRIES, ge=0, le=5, description="Retries before unhealthy.")
    monitor_timeout_seconds: StrictInt = Field(
        defaults.LB_MONITOR_TIMEOUT_SECONDS, ge=1, le=10, description="Seconds a health check may take."
    )

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if not _CLOUDFLARE_ID.match(value):
            raise ValueError(f"'{value}' is not a Cloudflare account id (32 hex characters)")
        return value


class FailoverSettings(_Model):
    """The traffic switch: Cloudflare records (or load balancers) for each hostname under failover."""

    zone_id: str = Field(description="Cloudflare zone id of `domain`.")
    domain: str = Field(description="The zone's domain, e.g. raptorflow.app.")
    mode: Literal["dns", "loadBalancer"] = Field("dns", description="Plain records, or health-checked load balancers.")
    health_path: str = Field(defaults.HEALTH_PATH, pattern=r"^/", description="Health endpoint path on every target.")
    hostnames: tuple[FailoverHostname, ...] = Field(min_length=1, description="The hostnames that fail over.")
    load_balancer: LoadBalancerSettings | None = Field(None, description="Required in loadBalancer mode.")

    @field_validator("zone_id")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not _CLOUDFLARE_ID.match(value):
            raise ValueError(f"'{value}' is not a Cloudflare zone id (32 hex characters)")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not _HOSTNAME.match(value):
            raise ValueError(f"'{value}' is not a domain name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FailoverSettings:
        names = [h.name for h in self.hostnames]
        if len(set(names)) != len(names):
            raise ValueError(f"each hostname once; got {names}")
        if self.mode == "loadBalancer" and self.load_balancer is None:
            raise ValueError("mode loadBalancer needs `loadBalancer: {accountId: ...}`")
        return self


class SiteValues(_Model):
    """One setting's value on each site."""

    primary: str
    standby: str


class SecretSiteValues(_Model):
    """One secret setting's value on each site (a missing one is reported with the command that sets it)."""

    primary: SecretStr | None = None
    standby: SecretStr | None = None


class VercelSettings(_Model):
    """Vercel project env vars that switch from primary-region to backup-region values on failover."""

    project_id: str = Field(description="Vercel project id (prj_...).")
    team_id: str | None = Field(None, description="Vercel team id, when the project belongs to a team.")
    targets: tuple[Literal["production", "preview", "development"], ...] = Field(
        ("production",), min_length=1, description="Environments the variables apply to."
    )
    variables: dict[str, SiteValues] = Field(default_factory=dict, description="Plain values per site, by name.")
    secret_variables: tuple[str, ...] = Field(
        (), description="Names whose per-site values are in the secret key `vercelSecretValues`."
    )
    existing_env_ids: dict[str, str] = Field(
        default_factory=dict,
        description="Ids of env vars that already exist in Vercel, by name: adopted (imported), not created "
                    "(`vercel env ls` does not show ids; GET /v10/projects/PROJECT/env does).",
    )

    @model_validator(mode="after")
    def _names(self) -> VercelSettings:
        for name in (*self.variables, *self.secret_variables):
            if not _ENV_NAME.match(name):
                raise ValueError(f"'{name}' is not an env var name (A-Z, 0-9, _)")
        both = set(self.variables) & set(self.secret_variables)
        if both:
            raise ValueError(f"{sorted(both)} are both plain and secret; keep each value in one place")
        unknown = sorted(set(self.existing_env_ids) - set(self.variables) - set(self.secret_variables))
        if unknown:
            raise ValueError(f"existingEnvIds names {unknown}, which are not among `variables` or `secretVariables`")
        for name, env_id in self.existing_env_ids.items():
            if not re.match(r"^[A-Za-z0-9]{8,64}$", env_id):
                raise ValueError(f"existingEnvIds.{name}: '{env_id}' is not a Vercel env var id")
        return self


class SlackChannel(_Model):
    """A Slack notification channel; its auth token is the secret `slackAuthToken`."""

    channel_name: str = Field(pattern=r"^#[a-z0-9_-]+$", description="Channel, e.g. #incidents.")


class NotificationSettings(_Model):
    """Where alerts go. At least one channel."""

    emails: tuple[str, ...] = Field((), description="Email addresses.")
    slack: SlackChannel | None = Field(None, description="Slack channel (token in secret `slackAuthToken`).")

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", address):
                raise ValueError(f"'{address}' is not an email address")
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> NotificationSettings:
        if not self.emails and self.slack is None:
            raise ValueError("at least one notification channel is required: `emails` or `slack`")
        return self


class UptimeSettings(_Model):
    """Uptime checks of every failover target."""

    period_seconds: Literal[60, 300, 600, 900] = Field(defaults.UPTIME_PERIOD_SECONDS, description="Check period.")
    timeout_seconds: StrictInt = Field(defaults.UPTIME_TIMEOUT_SECONDS, ge=1, le=60, description="Seconds per check.")
    regions: tuple[Literal["USA", "EUROPE", "SOUTH_AMERICA", "ASIA_PACIFIC"], ...] = Field(
        defaults.UPTIME_REGIONS, min_length=3, description="Checker regions (at least three)."
    )


class MonitoringSettings(_Model):
    """Alerting of this site: what is watched is derived from what the stack provisions."""

    @field_validator("site_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not _HOSTNAME.match(host):
                raise ValueError(f"'{host}' is not a hostname")
        return value

    notifications: NotificationSettings = Field(description="Where alerts go.")
    uptime: UptimeSettings = Field(default_factory=UptimeSettings)
    site_hosts: tuple[str, ...] = Field(
        (), description="Primary only: this site's own origins to check (the dr stack checks every target too)."
    )
    backup_age_margin_hours: StrictInt = Field(
        defaults.BACKUP_AGE_MARGIN_HOURS, ge=1, le=48,
        description="Hours beyond a schedule's interval before a missing backup alerts.",
    )
    runbook_base_url: str = Field(defaults.RUNBOOK_BASE_URL, pattern=r"^https://", description="Runbooks' URL.")


class ScenarioObjective(_Model):
    """A scenario's targets: how long recovery may take, and how much data may be lost."""

    rto_minutes: StrictInt = Field(ge=1, description="Recovery time objective, minutes.")
    rpo_minutes: int | None = Field(None, ge=0, description="Recovery point objective, minutes (none: n/a).")


def _objective(scenario: str) -> ScenarioObjective:
    return ScenarioObjective(**defaults.OBJECTIVES[scenario])


class Objectives(_Model):
    """The plan's objectives per scenario."""

    database_corruption: ScenarioObjective = Field(default_factory=lambda: _objective("databaseCorruption"))
    regional_outage: ScenarioObjective = Field(default_factory=lambda: _objective("regionalOutage"))
    security_breach: ScenarioObjective = Field(default_factory=lambda: _objective("securityBreach"))
    data_deletion: ScenarioObjective = Field(default_factory=lambda: _objective("dataDeletion"))


class PitrCapability(_Model):
    """Supabase point-in-time recovery (WAL archiving): an add-on, declared here, not provisioned."""

    enabled: bool = Field(False, description="Whether the Supabase project has PITR.")
    window_days: StrictInt = Field(defaults.PITR_WINDOW_DAYS, ge=1, le=35, description="How far back PITR reaches.")
    rpo_minutes: StrictInt = Field(defaults.PITR_RPO_MINUTES, ge=0, description="Worst-case loss of PITR (WAL shipping).")


class DatabaseReplicaCapability(_Model):
    """A Supabase read replica in another region that can take over: declared, not provisioned."""

    enabled: bool = Field(False, description="Whether a cross-region replica exists.")
    region: str | None = Field(None, description="The replica's (Supabase) region.")
    max_lag_minutes: StrictInt = Field(defaults.DATABASE_REPLICA_LAG_MINUTES, ge=0, description="Worst replication lag.")
    promote_minutes: StrictInt = Field(defaults.DATABASE_REPLICA_PROMOTE_MINUTES, ge=1, description="Time to promote it.")


class RecoverySettings(_Model):
    """Declared objectives and capabilities, and the figures recovery-time estimates use."""

    objectives: Objectives = Field(default_factory=Objectives)
    pitr: PitrCapability = Field(default_factory=PitrCapability)
    database_replica: DatabaseReplicaCapability = Field(default_factory=DatabaseReplicaCapability)
    database_size_gb: StrictFloat = Field(defaults.DATABASE_SIZE_GB, gt=0, description="Database size for restores, GB.")
    restore_mb_per_second: StrictFloat = Field(
        defaults.RESTORE_MB_PER_SECOND, gt=0, description="pg_restore throughput, MB/s."
    )
    decision_minutes: StrictInt = Field(defaults.DECISION_MINUTES, ge=0, description="Detect and decide, minutes.")
    apply_minutes: StrictInt = Field(defaults.APPLY_MINUTES, ge=0, description="A `pulumi up` of the switch, minutes.")
    event_driven_lag_minutes: StrictInt = Field(
        defaults.EVENT_DRIVEN_LAG_MINUTES, ge=0, description="Worst lag of event-driven replication, minutes."
    )




class VaultSetting(_Model):
    """One application setting kept in Secret Manager."""

    name: str = Field(description="The setting's name (env var style, e.g. SUPABASE_URL).")
    secret: bool = Field(True, description="Whether the value is secret (then it lives in configVaultSecrets).")
    value: str | None = Field(None, description="The plain value; only for settings marked secret: false.")

    @model_validator(mode="after")
    def _where_the_value_lives(self) -> VaultSetting:
        if not _ENV_NAME.match(self.name):
            raise ValueError(f"'{self.name}' is not a setting name (A-Z, 0-9, _)")
        if self.secret and self.value is not None:
            raise ValueError(f"{self.name} is secret: its value goes in the secret `configVaultSecrets`, "
                             f"never in plain text (pulumi config set --secret --path 'configVaultSecrets.{self.name}')")
        if not self.secret and self.value is None:
            raise ValueError(f"{self.name} is marked secret: false, so it needs a plain `value`")
        return self


class ConfigVaultSettings(_Model):
    """Application settings and secrets in Secret Manager, replicated to both sites' regions."""

    settings: tuple[VaultSetting, ...] = Field(min_length=1, description="The settings to keep.")
    cmek: bool = Field(False, description="Encrypt with customer-managed keys (one per region).")
    readers: tuple[str, ...] = Field((), description="Principals that may read the values (e.g. the deploy identity).")

    @field_validator("readers")
    @classmethod
    def _members(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _check_members(value)

    @model_validator(mode="after")
    def _unique(self) -> ConfigVaultSettings:
        names = [s.name for s in self.settings]
        if len(set(names)) != len(names):
            raise ValueError(f"each setting once; got {names}")
        return self


class ReplicaSet(_Model):
    """The standby site's copies of the primary site's buckets."""

    database_dumps: DatabaseDumpReplicaSettings = Field(default_factory=DatabaseDumpReplicaSettings)
    user_files: UserFilesReplicaSettings = Field(default_factory=UserFilesReplicaSettings)


class StackConfig(_Model):
    """The whole stack config of one site."""

    site: Literal["primary", "standby"] = Field(description="Which site this stack is.")
    promoted: bool = Field(False, description="Standby only: true makes the standby site the active one.")
    gcp: GcpSettings
    labels: dict[str, str] = Field(description="Labels on every labelled resource; `environment` is required.")
    kms: KmsSettings = Field(default_factory=KmsSettings)
    bucket_name_prefix: str | None = Field(None, description="Prefix of bucket names; defaults to the project id.")
    database_dumps: DatabaseDumpBucketSettings | None = Field(None, description="Primary only: the dump bucket.")
    user_files_bucket: str | None = Field(
        None, description="Primary only: name of the existing user-files bucket the standby site copies."
    )
    standby_region: str | None = Field(
        None, description="Primary only: the region of the standby site that keeps the copies (another continent)."
    )
    prod_stack: str | None = Field(None, description="Standby only: the primary stack, as org/project/stack.")
    replicas: ReplicaSet | None = Field(None, description="Standby only: the copies of the primary's buckets.")
    database_backup: DatabaseBackupSettings | None = Field(
        None, description="Scheduled backups of the database into this site's dump bucket."
    )
    failover: FailoverSettings | None = Field(None, description="Standby only: the DNS traffic switch.")
    vercel: VercelSettings | None = Field(None, description="Standby only: env vars switched on failover.")
    vercel_secret_values: dict[str, SecretSiteValues] | None = Field(
        None, description="Secret: per-site values of `vercel.secretVariables`."
    )
    monitoring: MonitoringSettings = Field(description="Alerting of this site (at least one channel).")
    recovery: RecoverySettings = Field(default_factory=RecoverySettings, description="Objectives and capabilities.")
    slack_auth_token: SecretStr | None = Field(None, description="Secret: Slack auth token for alerts.")
    config_vault: ConfigVaultSettings | None = Field(None, description="Primary only: settings in Secret Manager.")
    config_vault_secrets: dict[str, SecretStr] | None = Field(
        None, description="Secret: values of the secret settings of configVault, by name."
    )
    cloudflare_export_token: SecretStr | None = Field(
        None, description="Secret: a read-only Cloudflare DNS token for the daily zone export."
    )
    database_url: SecretStr | None = Field(None, description="Secret: libpq URL of the database to back up.")
    scratch_database_url: SecretStr | None = Field(
        None, description="Secret: libpq URL of the empty database the restore check restores into."
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key '{key}' must be lowercase letters, digits, '_' or '-', starting with a letter")
            if not isinstance(label, str):
                raise ValueError(f"label '{key}' must have a text value")
            if len(label) > 63:
                raise ValueError(f"label '{key}' value is {len(label)} characters; Google Cloud allows at most 63")
            if not _LABEL_VALUE.match(label):
                raise ValueError(f"label '{key}' value '{label}' must be lowercase letters, digits, '_' or '-'")
        if "environment" not in value:
            raise ValueError("an `environment` label is required (e.g. environment: prod)")
        return {"managed-by": defaults.MANAGED_BY_LABEL, **value}

    @field_validator("user_files_bucket", "bucket_name_prefix")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        if value is not None and not _BUCKET_NAME.match(value):
            raise ValueError(f"'{value}' is not a valid bucket name: 3-63 lowercase letters, digits, '-', '_', '.'")
        if value is not None and (value.startswith("goog") or "google" in value):
            raise ValueError(f"'{value}': Cloud Storage refuses bucket names that start with 'goog' or contain "
                             "'google'")
        return value

    @field_validator("standby_region")
    @classmethod
    def _standby_region(cls, value: str | None) -> str | None:
        return None if value is None else _check_region(value)

    @field_validator("prod_stack")
    @classmethod
    def _stack_name(cls, value: str | None) -> str | None:
        if value is not None and not _STACK_NAME.match(value):
            raise ValueError(f"'{value}' is not a stack name; use org/project/stack, e.g. acme/raptorflow-dr/prod")
        return value

    @model_validator(mode="before")
    @classmethod
    def _site_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("site") == "primary" and "databaseDumps" not in data:
            return {**data, "databaseDumps": {}}
        if isinstance(data, dict) and data.get("site") == "standby" and "replicas" not in data:
            return {**data, "replicas": {}}
        return data

    @model_validator(mode="after")
    def _site_rules(self) -> StackConfig:
        if self.site == "primary":
            for key, value in (("promoted", self.promoted or None), ("prodStack", self.prod_stack),
                               ("replicas", self.replicas)):
                if value is not None:
                    raise ValueError(f"`{key}` belongs to a standby stack; a primary stack must not set it")
            for key, switch in (("failover", self.failover), ("vercel", self.vercel)):
                if switch is not None:
                    raise ValueError(
                        f"`{key}` belongs to the standby stack: the dr stack owns the traffic switch so that it can "
                        "fail over while the primary region is down, and exactly one stack may own a DNS name"
                    )
            if self.user_files_bucket is None:
                raise ValueError("a primary stack needs `userFilesBucket`, the existing bucket of user files")
            if self.standby_region is None:
                raise ValueError("a primary stack needs `standbyRegion`, where the standby site keeps the copies")
            if GCP_REGIONS[self.standby_region] == self.gcp.continent:
                raise ValueError(
                    f"standbyRegion {self.standby_region} is on the same continent as {self.gcp.region}: "
                    "a regional outage can take both; pick a region on another continent"
                )
        else:
            if self.prod_stack is None:
                raise ValueError("a standby stack needs `prodStack`, the primary stack to read (org/project/stack)")
            for key, primary_only in (("databaseDumps", self.database_dumps),
                                      ("userFilesBucket", self.user_files_bucket),
                                      ("standbyRegion", self.standby_region)):
                if primary_only is not None:
                    raise ValueError(f"`{key}` belongs to a primary stack; a standby stack must not set it")
        return self

    @model_validator(mode="after")
    def _config_backups(self) -> StackConfig:
        if self.config_vault is not None and self.site != "primary":
            raise ValueError("`configVault` belongs to the primary stack (it replicates into the standby region)")
        export = self.database_backup.dns_export if self.database_backup else None
        if export is not None and self.failover is None:
            raise ValueError("databaseBackup.dnsExport exports the failover zone: it needs `failover` (standby)")
        return self

    @model_validator(mode="after")
    def _no_stray_secrets(self) -> StackConfig:
        # A secret value nothing reads is a mistake (a renamed setting, a typo): say so rather than keep it.
        pairs = (
            ("configVault settings marked secret", "configVaultSecrets",
             {s.name for s in self.config_vault.settings if s.secret} if self.config_vault else set(),
             set(self.config_vault_secrets or {})),
            ("vercel.secretVariables", "vercelSecretValues",
             set(self.vercel.secret_variables) if self.vercel else set(), set(self.vercel_secret_values or {})),
        )
        for declared_by, key, declared, given in pairs:
            stray = sorted(given - declared)
            if stray:
                raise ValueError(f"the secret `{key}` has values for {stray}, which are not among the "
                                 f"{declared_by} {sorted(declared)}; remove them or declare them there")
        return self

    @property
    def active(self) -> bool:
        """Whether this site serves traffic now: the primary unless the standby is promoted."""
        return self.site == "primary" or self.promoted

    @property
    def name_prefix(self) -> str:
        """Prefix of globally unique names (buckets): the config's, or the project id."""
        return self.bucket_name_prefix or self.gcp.project


@dataclass(frozen=True)
class RequiredSecret:
    """A secret config key the stack needs, given what it builds."""

    path: str
    """Key under the project's namespace; dotted for a value inside a map (`configVaultSecrets.NAME`)."""
    purpose: str
    """What the value is, for the prompt and the error."""

    def command(self, stack: str) -> str:
        """The CLI command that sets it; without a value the CLI prompts for it, so it never lands in history."""
        path_flag = " --path" if "." in self.path else ""
        return f"pulumi config set --secret{path_flag} --stack {stack} '{self.path}'"


def required_secrets(config: StackConfig) -> list[RequiredSecret]:
    """Every secret `config` needs: the one place that says which secret goes with which setting."""
    needed = []
    if config.database_backup is not None:
        needed.append(RequiredSecret("databaseUrl", "libpq URL of the database to back up"))
        needed.append(RequiredSecret("scratchDatabaseUrl", "libpq URL of the scratch database of the restore check"))
        if config.database_backup.dns_export is not None:
            needed.append(RequiredSecret("cloudflareExportToken", "read-only Cloudflare DNS token for the zone export"))
    if config.monitoring.notifications.slack is not None:
        needed.append(RequiredSecret("slackAuthToken", "Slack auth token of the alert channel"))
    for setting in config.config_vault.settings if config.config_vault else ():
        if setting.secret:
            needed.append(RequiredSecret(f"configVaultSecrets.{setting.name}", f"value of the setting {setting.name}"))
    for name in config.vercel.secret_variables if config.vercel else ():
        for site in ("primary", "standby"):
            needed.append(RequiredSecret(f"vercelSecretValues.{name}.{site}", f"Vercel {name} on the {site} site"))
    return needed


def _own_values(values: dict[str, Any]) -> dict[str, Any]:
    """The project's own keys of raw config `values` (full `ns:key` names), JSON objects decoded."""
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix):]: _decode(value) for key, value in values.items() if key.startswith(prefix)}


def missing_secrets(values: dict[str, Any]) -> list[RequiredSecret]:
    """The secrets raw config `values` needs and lacks; empty when the config is invalid (that error comes first)."""
    own = _own_values(values)
    try:
        config = StackConfig.model_validate(own)
    except ValidationError:
        return []
    return [secret for secret in required_secrets(config) if lookup(own, secret.path) is None]


def _missing_secrets_message(stack: str, missing: list[RequiredSecret]) -> str:
    lines = [f"stack {stack} lacks {len(missing)} secret(s); set all at once with `python -m tools.secrets {stack}`, "
             "or each with (the CLI prompts for the value):"]
    lines += [f"    {secret.command(stack)}    # {secret.purpose}" for secret in missing]
    return "\n  ".join(lines)


def _runtime_config() -> tuple[dict[str, Any], set[str]]:
    """All config values the engine (or the offline plan) handed the program, and the secret keys."""
    from pulumi.runtime import config as runtime_config

    values = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return values, {key for key in values if runtime_config.is_config_secret(key)}


def _decode(value: Any) -> Any:
    """Config values arrive as strings; objects and lists as JSON text."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


MAX_SHOWN_CHARS = 80


def _holds_secret(annotation: Any) -> bool:
    """Whether a field's type is, or contains, a SecretStr."""
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_secret(field.annotation) for field in annotation.model_fields.values())
    return any(_holds_secret(arg) for arg in getattr(annotation, "__args__", ()))


@functools.cache
def secret_keys_of_model() -> frozenset[str]:
    """Top-level keys whose values are secrets, read off the model's SecretStr fields."""
    return frozenset(field.alias or name for name, field in StackConfig.model_fields.items()
                     if _holds_secret(field.annotation))


def _describe(error: ErrorDetails, secret_keys: AbstractSet[str]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    key = f"{NAMESPACE}:{location}" if location else NAMESPACE
    if error["type"] == "extra_forbidden":
        return f"{key}: is not a known key; allowed here: {', '.join(_allowed_keys(error['loc'][:-1]))}"
    message = error["msg"].removeprefix("Value error, ")
    shown = error.get("input")
    top = str(error["loc"][0]) if error["loc"] else ""
    secret = top in secret_keys_of_model() or f"{NAMESPACE}:{top}" in secret_keys
    if secret:
        # A validator's own message may quote the value: say only what is wrong.
        message = "invalid value (not shown: it is a secret)" if error["type"] == "value_error" else message
    elif error["type"] not in ("missing", "model_type", "value_error") and not isinstance(shown, (dict, list)):
        text = repr(shown)
        message += f" (got {text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + '...'})"
    return f"{key}: {message}"


def _allowed_keys(location: tuple) -> list[str]:
    """The keys the config section at `location` accepts (for an unknown-key message)."""
    model: Any = StackConfig
    for part in location:
        if not isinstance(part, str):
            continue
        fields = {field.alias or name: field for name, field in model.model_fields.items()}
        annotation = fields[part].annotation
        model = next((arg for arg in getattr(annotation, "__args__", (annotation,))
                      if isinstance(arg, type) and issubclass(arg, BaseModel)), None)
        if model is None:
            return []
    return sorted(field.alias or name for name, field in model.model_fields.items())


def _secret_paths(model: BaseModel, prefix: str = "") -> list[str]:
    """Dotted keys of every SecretStr field set in `model`."""
    paths = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}{field.alias or name}"
        if isinstance(value, SecretStr):
            paths.append(key)
        elif isinstance(value, BaseModel):
            paths.extend(_secret_paths(value, f"{key}."))
        elif isinstance(value, dict):
            for item_key, item in value.items():
                if isinstance(item, SecretStr):
                    paths.append(f"{key}.{item_key}")
                elif isinstance(item, BaseModel):
                    paths.extend(_secret_paths(item, f"{key}.{item_key}."))
    return paths


def parse_stack_config(stack: str, values: dict[str, Any], secret_keys: AbstractSet[str] = frozenset()) -> StackConfig:
    """Validate raw config `values` (full `ns:key` names) of `stack`; raise ConfigError naming each bad key."""
    source = f"Pulumi.{stack}.yaml"
    problems = []
    own: dict[str, Any] = {}
    for full_key, value in sorted(values.items()):
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE:
            own[key] = _decode(value)
        elif namespace not in defaults.PROVIDER_NAMESPACES:
            problems.append(
                f"{full_key}: unknown namespace '{namespace}'; use {NAMESPACE}: for this project's keys "
                f"or one of {', '.join(defaults.PROVIDER_NAMESPACES)} for provider settings"
            )
    config = None
    try:
        config = StackConfig.model_validate(own)
    except ValidationError as exc:
        problems.extend(_describe(error, secret_keys) for error in exc.errors())
    if config is not None:
        for path in _secret_paths(config):
            top = path.split(".")[0]
            if f"{NAMESPACE}:{top}" not in secret_keys:
                problems.append(
                    f"{NAMESPACE}:{path}: holds a secret, so it must be set with "
                    f"`pulumi config set --secret --path {NAMESPACE}:{path}`, never in plain text"
                )
        missing = [secret for secret in required_secrets(config) if lookup(own, secret.path) is None]
        if missing:
            problems.append(_missing_secrets_message(stack, missing))
    if problems or config is None:  # no config without problems: a ValidationError has at least one error
        raise ConfigError(f"invalid stack config in {source}:\n  " + "\n  ".join(problems))
    return config


def load_stack_config() -> StackConfig:
    """Read and validate the running stack's config; raise ConfigError before any resource exists."""
    values, secret_keys = _runtime_config()
    return parse_stack_config(pulumi.get_stack(), values, secret_keys)
