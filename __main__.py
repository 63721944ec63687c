"""raptorflow-dr: the disaster-recovery plan as infrastructure.

One program, two stacks; the stack config's `site` says which one this is.

- prod (site `primary`, US): the database-dump bucket (30-day retention, CMEK,
  access logs); exports its name, URL and key, the region and the user-files
  bucket the standby site copies.
- dr (site `standby`, EU): replicas of prod's database-dump bucket (30 days)
  and user-files bucket (90 days), each filled by a daily Storage Transfer
  Service job (and, where configured, event-driven replication) that never
  deletes. Prod's outputs arrive via a StackReference.

prod also keeps the application's settings and secrets in Secret Manager,
replicated to both regions; dr exports the Cloudflare zone daily.

Both sites run the scheduled database backups (full 02:00 UTC, schema 02:30
UTC, restore check monthly) into their own dump bucket; the standby site's
backup schedules stay paused until the dr stack is promoted.

The dr stack owns the traffic switch: Cloudflare records (or load balancers)
for every hostname under failover and the Vercel env vars, all pointing at the
primary site until `promoted` is true. Resource names never depend on
`promoted`, so a flip only updates in place.
"""

from typing import TypeVar

import pulumi
import pulumi_gcp as gcp
from pydantic import SecretStr

from components.backup_bucket import BackupBucket, BackupBucketArgs
from components.bucket_replica import (
    SOURCE_NOTIFIER_PERMISSIONS,
    BucketReplica,
    BucketReplicaArgs,
    ReplicationAccess,
    ReplicationAccessArgs,
)
from components.config_vault import ConfigVault, ConfigVaultArgs
from components.failover_load_balancer import FailoverLoadBalancer, FailoverLoadBalancerArgs
from components.failover_record import FailoverRecord, FailoverRecordArgs
from components.project_apis import ProjectApis, ProjectApisArgs
from components.recovery_objectives import RecoveryObjectives
from components.region_environment import RegionEnvironment, RegionEnvironmentArgs
from components.scheduled_backup import ScheduledDatabaseBackup, ScheduledDatabaseBackupArgs
from components.site_monitoring import (
    BackupWatch,
    GuardedStorage,
    SiteMonitoring,
    SiteMonitoringArgs,
    TransferWatch,
    UptimeTarget,
)
from components.stack_config import (
    NAMESPACE,
    ConfigError,
    DatabaseDumpReplicaSettings,
    UserFilesReplicaSettings,
    load_stack_config,
)
from core.schedule import max_interval_hours

T = TypeVar("T")

config = load_stack_config()


def required(value: T | None, key: str) -> T:
    """A setting that stack-config validation already requires of this site's stack."""
    if value is None:
        raise ConfigError(f"{NAMESPACE}:{key} is required on a {config.site} stack and is not set")
    return value


def secret(value: SecretStr | None, key: str) -> pulumi.Output[str]:
    """A required secret setting, as a Pulumi secret."""
    return pulumi.Output.secret(required(value, key).get_secret_value())


# Every API the program uses, on before anything that needs it (a fresh project has them off).
apis = ProjectApis("apis", ProjectApisArgs(project=config.gcp.project))
apis.after_apis()
lookups = apis.invoke_options()
# What this site's monitoring watches; each part of the program adds what it provisions.
watched = SiteMonitoringArgs(
    project=config.gcp.project,
    settings=config.monitoring,
    labels=config.labels,
    slack_auth_token=pulumi.Output.secret(config.slack_auth_token.get_secret_value()) if config.slack_auth_token else None,
)


def bucket_args(suffix: str, role: str, settings, replication_labels=None) -> BackupBucketArgs:
    """Arguments of a backup bucket of this site, named `<prefix>-<suffix>`."""
    return BackupBucketArgs(
        role=role,
        replication_labels=replication_labels or {},
        bucket_name=f"{config.name_prefix}-{suffix}",
        project=config.gcp.project,
        region=config.gcp.region,
        settings=settings,
        kms_rotation_days=config.kms.rotation_days,
        labels=config.labels,
        lookup_options=lookups,
    )


def scheduled_backups(bucket_name: pulumi.Input[str]) -> None:
    """The database backup jobs of this site, writing into `bucket_name`; paused on a standby not promoted."""
    if config.database_backup is None:
        return
    backups = ScheduledDatabaseBackup(
        "db-backup",
        ScheduledDatabaseBackupArgs(
            project=config.gcp.project,
            region=config.gcp.region,
            bucket_name=bucket_name,
            settings=config.database_backup,
            database_url=secret(config.database_url, "databaseUrl"),
            scratch_database_url=secret(config.scratch_database_url, "scratchDatabaseUrl"),
            paused=not config.active,
            labels=config.labels,
            dns_export=config.database_backup.dns_export,
            zone_id=config.failover.zone_id if config.failover else None,
            cloudflare_token=(pulumi.Output.secret(config.cloudflare_export_token.get_secret_value())
                              if config.cloudflare_export_token else None),
        ),
    )
    pulumi.export("databaseBackupJobs", backups.job_names)
    pulumi.export("databaseBackupWriter", backups.writer_email)
    for entry in config.database_backup.schedules:
        watched.backups.append(
            BackupWatch(backups.jobs[entry.kind].name, entry.kind, max_interval_hours(entry.cron), config.active)
        )
    restore = config.database_backup.restore_check
    watched.backups.append(BackupWatch(
        backups.jobs["restore-check"].name, "restore-check", max_interval_hours(restore.cron), True, "restore-check"
    ))
    if config.database_backup.dns_export is not None:
        export = config.database_backup.dns_export
        watched.backups.append(BackupWatch(
            backups.jobs["dns-export"].name, "dns-export", max_interval_hours(export.cron), True, "export-dns"
        ))


def primary_site() -> None:
    """prod: the dump bucket, its backups, the settings vault, and the outputs the standby site reads."""
    dumps = BackupBucket(
        "db-dumps",
        bucket_args("db-dumps", "database-dumps", config.database_dumps, {"replica-region": config.standby_region}),
    )
    watched.guarded.append(GuardedStorage(dumps.bucket_name, dumps.kms_key_id))
    # The primary watches its own origins; the dr stack watches both sites' and the public names.
    watched.uptime.extend(UptimeTarget(host, host.replace(".", "-"), serves_traffic=True)
                          for host in config.monitoring.site_hosts)
    scheduled_backups(dumps.bucket_name)
    if config.config_vault is not None:
        vault = ConfigVault(
            "config",
            ConfigVaultArgs(
                project=config.gcp.project,
                regions=(config.gcp.region, required(config.standby_region, "standbyRegion")),
                settings=config.config_vault,
                kms_rotation_days=config.kms.rotation_days,
                labels=config.labels,
                secret_values={name: pulumi.Output.secret(value.get_secret_value())
                               for name, value in (config.config_vault_secrets or {}).items()},
            ),
        )
        pulumi.export("configVaultSecrets", vault.secret_ids)
    # The standby site's event-driven replication sets up change notifications on these buckets: the least
    # that allows it, granted by the dr stack to its transfer agent on each source bucket.
    notifier = gcp.projects.IAMCustomRole(
        "transfer-source-notifier",
        project=config.gcp.project,
        role_id="raptorflowTransferSourceNotifier",
        title="raptorflow-dr: set up change notifications for cross-region replication",
        permissions=list(SOURCE_NOTIFIER_PERMISSIONS),
    )
    pulumi.export("project", config.gcp.project)
    pulumi.export("transferSourceNotifierRole", notifier.name)
    pulumi.export("region", config.gcp.region)
    pulumi.export("databaseDumpsBucket", dumps.bucket_name)
    pulumi.export("databaseDumpsBucketUrl", dumps.url)
    pulumi.export("databaseDumpsKmsKey", dumps.kms_key_id)
    pulumi.export("databaseDumpsLogBucket", dumps.log_bucket_name)
    pulumi.export("userFilesBucket", config.user_files_bucket)
    pulumi.export("standbyRegion", config.standby_region)


def standby_site() -> None:
    """dr: the EU copies of prod's buckets, the standby backups, and the traffic switch."""
    prod = pulumi.StackReference(required(config.prod_stack, "prodStack"))
    replicas = required(config.replicas, "replicas")
    copies: dict[str, tuple[str, str, DatabaseDumpReplicaSettings | UserFilesReplicaSettings]] = {
        "databaseDumps": ("db-dumps", "database-dumps", replicas.database_dumps),
        "userFiles": ("user-files", "user-files", replicas.user_files),
    }
    source_region = prod.require_output("region")
    access = None
    if any(settings.transfer.event_driven for _, _, settings in copies.values()):
        access = ReplicationAccess("replication-access", ReplicationAccessArgs(
            project=config.gcp.project, source_project=prod.require_output("project"), lookup_options=lookups,
        ))
    for output, (slug, role, settings) in copies.items():
        name = f"{slug}-replica"
        replica = BucketReplica(
            name,
            BucketReplicaArgs(
                source_bucket_name=prod.require_output(f"{output}Bucket"),
                sink=bucket_args(name, role, settings, {"source-region": source_region}),
                transfer=settings.transfer,
                description=f"Daily copy of the primary site's {role} into {config.gcp.region}",
                replication_access=access,
                source_notifier_role=prod.require_output("transferSourceNotifierRole"),
                lookup_options=lookups,
            ),
        )
        pulumi.export(f"{output}ReplicaBucket", replica.bucket_name)
        pulumi.export(f"{output}ReplicaBucketUrl", replica.url)
        pulumi.export(f"{output}ReplicaKmsKey", replica.kms_key_id)
        pulumi.export(f"{output}TransferJob", replica.transfer_job_name)
        watched.guarded.append(GuardedStorage(replica.bucket_name, replica.kms_key_id))
        watched.transfers.append(
            TransferWatch(replica.transfer_job_names, slug, max_interval_hours(settings.transfer.cron))
        )
        if output == "databaseDumps":
            scheduled_backups(replica.bucket_name)
    pulumi.export("region", config.gcp.region)
    pulumi.export("promoted", config.promoted)
    traffic_switch()


def traffic_switch() -> None:
    """Cloudflare records (or load balancers) and Vercel env vars, pointing at the active site."""
    if config.failover is not None:
        failover = config.failover
        if failover.mode == "loadBalancer":
            FailoverLoadBalancer("traffic", FailoverLoadBalancerArgs(settings=failover, standby_active=config.promoted))
        else:
            for host in failover.hostnames:
                FailoverRecord(
                    f"dns-{host.slug}",
                    FailoverRecordArgs(
                        zone_id=failover.zone_id, domain=failover.domain, hostname=host,
                        standby_active=config.promoted,
                    ),
                )
        pulumi.export("failoverHostnames", [host.fqdn(failover.domain) for host in failover.hostnames])
        watched.health_path = failover.health_path
        for host in failover.hostnames:
            watched.uptime.append(UptimeTarget(host.fqdn(failover.domain), f"{host.slug}-public", True))
            for site in ("primary", "standby"):
                watched.uptime.append(UptimeTarget(
                    getattr(host, site), f"{host.slug}-{site}", serves_traffic=(site == "standby") == config.promoted,
                    validate_ssl=host.type == "CNAME",
                ))
        pulumi.export("activeSite", "standby" if config.promoted else "primary")
    if config.vercel is not None:
        secrets: dict[str, tuple[pulumi.Input[str], pulumi.Input[str]]] = {
            key: (secret(v.primary, f"vercelSecretValues.{key}.primary"),
                  secret(v.standby, f"vercelSecretValues.{key}.standby"))
            for key, v in (config.vercel_secret_values or {}).items()
        }
        RegionEnvironment(
            "vercel-env",
            RegionEnvironmentArgs(settings=config.vercel, standby_active=config.promoted, secret_values=secrets),
        )



if config.site == "primary":
    primary_site()
else:
    standby_site()
SiteMonitoring("monitoring", watched)
RecoveryObjectives("recovery", config.site, config.recovery)
