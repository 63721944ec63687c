"""The parts of the program, one component each: the primary site, the standby site and the traffic switch.

Each part builds what its site provisions from the validated stack config and says what monitoring should
watch (`watched`) and what the stack exports (`exports`). The components they create were first created at
the top level of the stack; each is aliased to that parent, so grouping them here replaces nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_gcp as gcp
from pydantic import SecretStr

from core.contracts import BUCKET_ROLES, DATABASE_DUMPS, Label
from core.roles import TRANSFER_SOURCE_NOTIFIER
from core.schedule import max_interval_hours

from .backup_bucket import BackupBucket, BackupBucketArgs
from .bucket_replica import (
    BucketReplica,
    BucketReplicaArgs,
    ReplicationAccess,
    ReplicationAccessArgs,
)
from .config import NAMESPACE, BackupBucketSettings, ConfigError, StackConfig
from .config_vault import ConfigVault, ConfigVaultArgs
from .failover_load_balancer import FailoverLoadBalancer, FailoverLoadBalancerArgs
from .failover_record import FailoverRecord, FailoverRecordArgs
from .image_registry import ImageRegistry, ImageRegistryArgs
from .region_environment import RegionEnvironment, RegionEnvironmentArgs
from .scheduled_backup import ScheduledDatabaseBackup, ScheduledDatabaseBackupArgs, ZoneExport, ZoneExportArgs
from .site_monitoring import GuardedStorage, SiteMonitoringArgs, TransferWatch, UptimeTarget, Watched


@dataclass(frozen=True)
class SiteArgs:
    """What every part needs: the validated stack config and the options of provider look-ups."""

    config: StackConfig
    lookup_options: pulumi.InvokeOutputOptions | None = None


def required(config: StackConfig, value: Any, key: str) -> Any:
    """A setting that stack-config validation already requires of this site's stack."""
    if value is None:
        raise ConfigError(f"{NAMESPACE}:{key} is required on a {config.site} stack and is not set")
    return value


def secret(config: StackConfig, value: SecretStr | None, key: str) -> pulumi.Output[str]:
    """A required secret setting, as a Pulumi secret."""
    return pulumi.Output.secret(required(config, value, key).get_secret_value())


class SitePart(pulumi.ComponentResource):
    """A part of the program: its children were top-level resources before, hence the alias on each."""

    watched: Watched
    exports: dict[str, Any]

    def __init__(self, type_: str, name: str, args: SiteArgs, opts: pulumi.ResourceOptions | None):
        super().__init__(type_, name, None, opts)
        self.config, self.lookups = args.config, args.lookup_options
        self.watched, self.exports = Watched(), {}

    def child(self) -> pulumi.ResourceOptions:
        """Options of a component this part creates: parented here, aliased to its former place."""
        return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])

    def bucket_args(self, suffix: str, role: str, settings: BackupBucketSettings,
                    replication_labels: dict[str, pulumi.Input[str]]) -> BackupBucketArgs:
        """Arguments of a backup bucket of this site, named `<prefix>-<suffix>`."""
        config = self.config
        return BackupBucketArgs(
            role=role, replication_labels=replication_labels, bucket_name=f"{config.name_prefix}-{suffix}",
            project=config.gcp.project, region=config.gcp.region, settings=settings,
            kms_rotation_days=config.kms.rotation_days, labels=config.labels, lookup_options=self.lookups,
            rebuild=config.deploy.rebuild, iam_propagation_seconds=config.deploy.iam_propagation_seconds,
        )

    def scheduled_backups(self, bucket_name: pulumi.Input[str]) -> None:
        """The database backup jobs of this site (paused on a standby not promoted), and the zone export."""
        config, settings = self.config, self.config.database_backup
        if settings is None:
            return
        registry = ImageRegistry("backup-images", ImageRegistryArgs(
            project=config.gcp.project, region=config.gcp.region, labels=config.labels, rebuild=config.deploy.rebuild,
        ), pulumi.ResourceOptions(parent=self))
        self.exports["backupImageRepository"] = registry.url
        backups = ScheduledDatabaseBackup("db-backup", ScheduledDatabaseBackupArgs(
            project=config.gcp.project, region=config.gcp.region, bucket_name=bucket_name, settings=settings,
            database_url=secret(config, config.database_url, "databaseUrl"),
            scratch_database_url=secret(config, config.scratch_database_url, "scratchDatabaseUrl"),
            paused=not config.active, labels=config.labels, role_generation=config.deploy.generation,
            deletion_protection=not config.deploy.teardown, registry=registry,
        ), self.child())
        self.exports["databaseBackupJobs"] = backups.job_names
        self.exports["databaseBackupWriter"] = backups.writer_email
        self.watched.backups.extend(backups.watches)
        if settings.dns_export is not None:
            failover = required(config, config.failover, "standby.failover")
            export = ZoneExport("dns-export", ZoneExportArgs(
                zone_id=failover.zone_id, settings=settings.dns_export, backups=backups,
                api_token=secret(config, config.cloudflare_export_token, "cloudflareExportToken"),
            ), pulumi.ResourceOptions(parent=self))
            self.exports["dnsExportJob"] = export.job_name
            self.watched.backups.extend(export.watches)


class PrimarySite(SitePart):
    """prod: the dump bucket, its backups, the settings vault, and the outputs the standby site reads."""

    def __init__(self, name: str, args: SiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:site:PrimarySite", name, args, opts)
        config, own = self.config, self.config.own_primary
        dumps = BackupBucket(DATABASE_DUMPS.prefix, self.bucket_args(
            DATABASE_DUMPS.prefix, DATABASE_DUMPS.label, own.database_dumps, {Label.REPLICA_REGION: own.standby_region}),
            self.child())
        self.watched.guarded.append(GuardedStorage(dumps.bucket_name, dumps.kms_key_id))
        # The primary watches its own origins; the dr stack watches both sites' and the public names.
        self.watched.uptime.extend(UptimeTarget(host, host.replace(".", "-"), serves_traffic=True)
                                   for host in config.monitoring.site_hosts)
        self.scheduled_backups(dumps.bucket_name)
        if own.config_vault is not None:
            vault = ConfigVault("config", ConfigVaultArgs(
                project=config.gcp.project, regions=(config.gcp.region, own.standby_region), settings=own.config_vault,
                kms_rotation_days=config.kms.rotation_days, labels=config.labels,
                secret_values={name: pulumi.Output.secret(value.get_secret_value())
                               for name, value in (config.config_vault_secrets or {}).items()},
                rebuild=config.deploy.rebuild, deletion_protection=not config.deploy.teardown,
                iam_propagation_seconds=config.deploy.iam_propagation_seconds,
            ), self.child())
            self.exports["configVaultSecrets"] = vault.secret_ids
        # The standby site's event-driven replication sets up change notifications on these buckets: the least
        # that allows it, granted by the dr stack to its transfer agent on each source bucket.
        notifier = gcp.projects.IAMCustomRole(
            "transfer-source-notifier", project=config.gcp.project,
            role_id=TRANSFER_SOURCE_NOTIFIER.role_id(config.deploy.generation), title=TRANSFER_SOURCE_NOTIFIER.title,
            permissions=list(TRANSFER_SOURCE_NOTIFIER.permissions), opts=self.child(),
        )
        self.exports.update({
            "project": config.gcp.project, "transferSourceNotifierRole": notifier.name, "region": config.gcp.region,
            "databaseDumpsBucket": dumps.bucket_name, "databaseDumpsBucketUrl": dumps.url,
            "databaseDumpsKmsKey": dumps.kms_key_id, "databaseDumpsLogBucket": dumps.log_bucket_name,
            "userFilesBucket": own.user_files_bucket, "standbyRegion": own.standby_region,
            # The standby stack grants it the right to publish change notifications: read here, where looking it
            # up needs no more than this stack's own rights (from dr it would need resourcemanager.projects.get
            # on this project).
            "storageServiceAgent": dumps.storage_agent_email,
        })
        self.register_outputs({})


class StandbySite(SitePart):
    """dr: the EU copies of prod's buckets (read through a StackReference) and the standby backups."""

    def __init__(self, name: str, args: SiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:site:StandbySite", name, args, opts)
        config, own = self.config, self.config.own_standby
        prod = pulumi.StackReference(own.prod_stack, opts=self.child())
        replicas = own.replicas
        source_region = prod.require_output("region")
        access = None
        if any(replicas.of(role).transfer.event_driven for role in BUCKET_ROLES):
            access = ReplicationAccess("replication-access", ReplicationAccessArgs(
                project=config.gcp.project, source_storage_agent=prod.require_output("storageServiceAgent"),
                lookup_options=self.lookups,
            ), self.child())
        for role in BUCKET_ROLES:
            settings, output = replicas.of(role), role.config_key
            replica = BucketReplica(role.replica_prefix, BucketReplicaArgs(
                source_bucket_name=prod.require_output(f"{output}Bucket"),
                sink=self.bucket_args(role.replica_prefix, role.label, settings, {Label.SOURCE_REGION: source_region}),
                transfer=settings.transfer,
                description=f"Daily copy of the primary site's {role.label} into {config.gcp.region}",
                replication_access=access, source_notifier_role=prod.require_output("transferSourceNotifierRole"),
                lookup_options=self.lookups,
            ), self.child())
            self.exports.update({
                f"{output}ReplicaBucket": replica.bucket_name, f"{output}ReplicaBucketUrl": replica.url,
                f"{output}ReplicaKmsKey": replica.kms_key_id, f"{output}TransferJob": replica.transfer_job_name,
            })
            self.watched.guarded.append(GuardedStorage(replica.bucket_name, replica.kms_key_id))
            self.watched.transfers.append(
                TransferWatch(replica.transfer_job_names, role.prefix, max_interval_hours(settings.transfer.cron),
                              created=replica.transfer_job_created))
            if role is DATABASE_DUMPS:
                self.scheduled_backups(replica.bucket_name)
        self.exports.update({"region": config.gcp.region, "promoted": config.promoted})
        self.register_outputs({})


class TrafficSwitch(SitePart):
    """dr: Cloudflare records (or load balancers) and Vercel env vars, pointing at the active site."""

    def __init__(self, name: str, args: SiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:site:TrafficSwitch", name, args, opts)
        config, failover = self.config, self.config.failover
        if failover is not None:
            if failover.mode == "loadBalancer":
                FailoverLoadBalancer("traffic", FailoverLoadBalancerArgs(
                    settings=failover, standby_active=config.promoted), self.child())
            else:
                for host in failover.hostnames:
                    FailoverRecord(f"dns-{host.slug}", FailoverRecordArgs(
                        zone_id=failover.zone_id, domain=failover.domain, hostname=host,
                        standby_active=config.promoted, adopting=config.deploy.adopting,
                    ), self.child())
            self.exports["failoverHostnames"] = [host.fqdn(failover.domain) for host in failover.hostnames]
            self.exports["activeSite"] = "standby" if config.promoted else "primary"
            self.watched.health_path = failover.health_path
            for host in failover.hostnames:
                self.watched.uptime.append(UptimeTarget(host.fqdn(failover.domain), f"{host.slug}-public", True))
                self.watched.uptime.extend(UptimeTarget(
                    getattr(host, site), f"{host.slug}-{site}", serves_traffic=(site == "standby") == config.promoted,
                    validate_ssl=host.type == "CNAME",
                    host_header=None if host.type == "CNAME" else host.fqdn(failover.domain),
                ) for site in ("primary", "standby"))
        if config.vercel is not None:
            secrets: dict[str, tuple[pulumi.Input[str], pulumi.Input[str]]] = {
                key: (secret(config, v.primary, f"vercelSecretValues.{key}.primary"),
                      secret(config, v.standby, f"vercelSecretValues.{key}.standby"))
                for key, v in (config.vercel_secret_values or {}).items()
            }
            RegionEnvironment("vercel-env", RegionEnvironmentArgs(
                settings=config.vercel, standby_active=config.promoted, secret_values=secrets,
                adopting=config.deploy.adopting), self.child())
        self.register_outputs({})


def monitoring_args(config: StackConfig, parts: Sequence[SitePart]) -> SiteMonitoringArgs:
    """What this site's monitoring watches: everything each part asked for."""
    args = SiteMonitoringArgs(
        project=config.gcp.project, settings=config.monitoring, labels=config.labels,
        slack_auth_token=pulumi.Output.secret(config.slack_auth_token.get_secret_value())
        if config.slack_auth_token else None,
    )
    for part in parts:
        args.add(part.watched)
    return args
