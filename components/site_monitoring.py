"""SiteMonitoring: the alerts of one site, derived from what the site provisions.

The caller hands over what exists - backup jobs, transfer jobs, failover
targets, guarded buckets and keys - and every item gets its alerts, so adding a
schedule or a hostname adds its alerts without touching this module. Each
alert policy carries the plan's severity (P0-P3, as a `severity` user label and
Cloud Monitoring's own severity), documentation with the first steps and a
runbook link, every notification channel, and an alert strategy (auto-close;
a notification rate limit on log-match alerts) so a flapping check does not
page every minute.

Backup age is a *threshold* on a log-based count of successful backups over
the schedule's longest gap plus a margin (`... or vector(0)) < 1`), so it fires
even when no backup ever succeeded - a metric-absence condition would wait at
most 23.5 hours and never fire before the first data point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pulumi
import pulumi_gcp as gcp

from core.alerts import (
    ALERT_AUTO_CLOSE_SECONDS,
    ALERT_NOTIFICATION_RATE_LIMIT_SECONDS,
    CATALOG,
    SEVERITIES,
    UPTIME_FAILED_PERIODS,
    AlertKind,
)

from . import defaults
from .config import MonitoringSettings


def due_after(created: str | None, hours: float) -> int:
    """The Unix time from which a missing event alerts: `hours` after `created` (RFC 3339); 0 when the creation
    time is not known (the condition then fires on data alone)."""
    if not created:
        return 0
    start = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return int(start.timestamp() + hours * 3600)


BACKUP_SUCCESS_METRIC = "raptorflow_backup_success"
TRANSFER_COPY_METRIC = "raptorflow_transfer_copies"


@dataclass(frozen=True)
class BackupWatch:
    """A scheduled run of the backup job: a backup of one kind, the restore check, or the DNS export."""

    job_name: pulumi.Input[str]
    kind: str  # full | schema | restore-check | dns-export
    label: str  # how alerts name it: "full backup", "restore check", ...
    interval_hours: float  # longest gap between two scheduled runs
    failure_alert: str  # the catalog entry of a failed run
    command: str  # the job's subcommand, as its log line names it
    age_alert: bool = True  # whether a missing success alerts at all (not for the monthly restore check)
    active: bool = True  # False for a paused standby schedule: its age alert stays disabled until promoted
    created: pulumi.Input[str] | None = None  # when the job was created (RFC 3339): no age alert before it is due


@dataclass(frozen=True)
class TransferWatch:
    """The Storage Transfer Service jobs that keep one replica: the daily sync and, where on, event-driven
    replication. With replication on, the daily job finds nothing left to copy, so copies count from either."""

    job_names: tuple[pulumi.Input[str], ...]
    slug: str
    interval_hours: float
    created: pulumi.Input[str] | None = None  # when the daily job was created (RFC 3339): no alert before it is due


@dataclass(frozen=True)
class UptimeTarget:
    """An HTTPS endpoint whose `/health` must answer 200."""

    host: str
    slug: str
    serves_traffic: bool  # the active site's targets and the public hostnames page P0; the other site's P2
    validate_ssl: bool = True
    # The name the origin serves, sent as the Host header when `host` is an IP address: a check of a bare IP
    # sends the IP as Host, and a name-based origin answers it with an error, which would page P0.
    host_header: str | None = None


@dataclass(frozen=True)
class GuardedStorage:
    """A backup bucket and its key: deleting or loosening them is a P0."""

    bucket_name: pulumi.Input[str]
    kms_key_id: pulumi.Input[str]


@dataclass(kw_only=True)
class Watched:
    """What a site's monitoring watches; each part of the program says what it wants watched in one of these."""

    backups: list[BackupWatch] = field(default_factory=list)
    transfers: list[TransferWatch] = field(default_factory=list)
    uptime: list[UptimeTarget] = field(default_factory=list)
    guarded: list[GuardedStorage] = field(default_factory=list)
    health_path: str = defaults.HEALTH_PATH
    """Path of the health endpoint on every uptime target."""

    def add(self, other: Watched) -> None:
        """Also watch what `other` holds (its health path, where it names one of its own)."""
        self.backups.extend(other.backups)
        self.transfers.extend(other.transfers)
        self.uptime.extend(other.uptime)
        self.guarded.extend(other.guarded)
        if other.health_path != defaults.HEALTH_PATH:
            self.health_path = other.health_path


@dataclass(kw_only=True)
class SiteMonitoringArgs(Watched):
    """Inputs of a SiteMonitoring: where, to whom, and what it watches."""

    project: str
    """Project whose Cloud Monitoring holds the checks and alerts."""
    settings: MonitoringSettings
    """Channels, uptime timings, backup-age margin and runbook URL, as validated stack config."""
    labels: dict[str, str]
    """User labels on every alert policy and check."""
    slack_auth_token: pulumi.Input[str] | None = None
    """The Slack token (a Pulumi secret), when a Slack channel is configured."""


class SiteMonitoring(pulumi.ComponentResource):
    """Notification channels, log-based metrics, uptime checks and alert policies of one site."""

    alert_count: int
    """How many alert policies were created."""

    def __init__(self, name: str, args: SiteMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:monitoring:SiteMonitoring", name, None, opts)
        self._name, self._args = name, args
        self._channels = self._notification_channels()
        self.alert_count = 0
        # Log-based metrics by name: an alert on one must wait for it (Monitoring refuses unknown metrics).
        self._metrics: dict[str, gcp.logging.Metric] = {}

        if args.backups:
            self._log_metric(
                "backup-success", BACKUP_SUCCESS_METRIC, "Successful runs of the backup job, from its structured log line",
                'resource.type="cloud_run_job" AND jsonPayload.event="raptorflow.backup" '
                'AND jsonPayload.result="success"',
                {"kind": "EXTRACT(jsonPayload.kind)", "command": "EXTRACT(jsonPayload.command)"},
            )
        for backup in args.backups:
            self._backup_alerts(backup)

        if args.transfers:
            self._log_metric(
                "transfer-copies", TRANSFER_COPY_METRIC, "Objects copied by Storage Transfer Service jobs",
                'resource.type="storage_transfer_job" AND jsonPayload.action="COPY" '
                'AND jsonPayload.status.statusCode="OK"',
                {},
            )
        for transfer in args.transfers:
            self._transfer_alerts(transfer)
        for target in args.uptime:
            self._uptime(target)
        if args.guarded:
            self._audit_alert()
        self.register_outputs({"alertCount": self.alert_count})

    # ------------------------------------------------------------ building blocks

    def _log_metric(self, slug: str, metric: str, description: str, log_filter: str,
                    label_extractors: dict[str, str]) -> None:
        """A log-based counter `metric` (an alert on it must wait for it: Monitoring refuses unknown metrics)."""
        self._metrics[metric] = gcp.logging.Metric(
            f"{self._name}-{slug}",
            name=metric,
            project=self._args.project,
            description=description,
            filter=log_filter,
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                metric_kind="DELTA", value_type="INT64",
                labels=[gcp.logging.MetricMetricDescriptorLabelArgs(key=key) for key in label_extractors] or None,
            ),
            label_extractors=label_extractors or None,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _notification_channels(self) -> list[pulumi.Output[str]]:
        args, notifications = self._args, self._args.settings.notifications
        child = pulumi.ResourceOptions(parent=self)
        channels = [
            gcp.monitoring.NotificationChannel(
                f"{self._name}-email-{index}",
                project=args.project,
                type="email",
                display_name=f"raptorflow-dr {address}",
                labels={"email_address": address},
                user_labels=args.labels,
                opts=child,
            )
            for index, address in enumerate(notifications.emails)
        ]
        if notifications.slack is not None:
            channels.append(
                gcp.monitoring.NotificationChannel(
                    f"{self._name}-slack",
                    project=args.project,
                    type="slack",
                    display_name=f"raptorflow-dr {notifications.slack.channel_name}",
                    labels={"channel_name": notifications.slack.channel_name},
                    sensitive_labels=gcp.monitoring.NotificationChannelSensitiveLabelsArgs(
                        auth_token=pulumi.Output.secret(args.slack_auth_token)
                    ),
                    user_labels=args.labels,
                    opts=child,
                )
            )
        return [channel.name for channel in channels]

    def _alert(self, kind: AlertKind, name: str, title: str, target: str,
               condition: gcp.monitoring.AlertPolicyConditionArgs, *, serves_traffic: bool = True,
               enabled: bool = True, metric: str | None = None, filled: dict[str, str] | None = None) -> None:
        """An alert policy of catalog entry `kind`: its severity, documentation and label, every channel."""
        severity = kind.severity_for(serves_traffic)
        strategy = gcp.monitoring.AlertPolicyAlertStrategyArgs(
            auto_close=f"{ALERT_AUTO_CLOSE_SECONDS}s",
            notification_rate_limit=gcp.monitoring.AlertPolicyAlertStrategyNotificationRateLimitArgs(
                period=f"{ALERT_NOTIFICATION_RATE_LIMIT_SECONDS}s"
            ) if kind.log_match else None,
        )
        gcp.monitoring.AlertPolicy(
            f"{self._name}-{name}",
            project=self._args.project,
            display_name=f"[{severity}] {title}",
            combiner="OR",
            conditions=[condition],
            notification_channels=self._channels,
            severity=SEVERITIES[severity]["cloud"],
            enabled=enabled,
            user_labels={**self._args.labels, "severity": severity.lower(), "raptorflow-alert": kind.slug,
                         "raptorflow-target": target},
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                subject=f"[{severity}] {title}", mime_type="text/markdown",
                content=kind.documentation(self._args.settings.runbook_base_url, serves_traffic, filled),
            ),
            alert_strategy=strategy,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._metrics[metric]] if metric else None),
        )
        self.alert_count += 1

    @staticmethod
    def _no_events(display_name: str, metric: str, selector: pulumi.Input[str], hours: float,
                   kind: AlertKind, created: pulumi.Input[str] | None) -> gcp.monitoring.AlertPolicyConditionArgs:
        """A PromQL condition: fewer than one `metric` event in `hours` - also true when there never was any -
        once `hours` have passed since what it watches was `created`, so a fresh deploy stays quiet until the
        first run was due and missed."""
        window = f"{round(hours)}h"
        def promql(labels: str, created_at: str | None) -> str:
            missing = (f"(sum(increase(logging_googleapis_com:user_{metric}{{{labels}}}[{window}])) "
                       f"or vector(0)) < {kind.threshold:g}")
            due = due_after(created_at, hours)
            return f"({missing}) and on() (vector(time()) > {due})" if due else missing

        query = pulumi.Output.all(pulumi.Output.from_input(selector), pulumi.Output.from_input(created)).apply(
            lambda pair: promql(pair[0], pair[1]))
        return gcp.monitoring.AlertPolicyConditionArgs(
            display_name=display_name,
            condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                query=query, duration="0s", evaluation_interval=f"{kind.window_seconds}s",
                # A new log-based metric has no data until its first log line: without this Monitoring
                # refuses the query ("metric ... not found").
                disable_metric_validation=True,
            ),
        )

    # ------------------------------------------------------------ alerts per watched thing

    def _backup_alerts(self, watch: BackupWatch) -> None:
        job = pulumi.Output.from_input(watch.job_name)
        failed = CATALOG[watch.failure_alert]
        self._alert(
            failed, f"{watch.kind}-failed", f"Database {watch.label} failed", watch.kind,
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"{watch.label} execution failed",
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=job.apply(
                        lambda name: 'metric.type="run.googleapis.com/job/completed_execution_count" AND '
                                     f'resource.type="cloud_run_job" AND resource.labels.job_name="{name}" AND '
                                     'metric.labels.result="failed"'
                    ),
                    comparison=failed.comparison,
                    threshold_value=failed.threshold,
                    duration="0s",
                    aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                        alignment_period=f"{failed.window_seconds}s", per_series_aligner=failed.aligner,
                        cross_series_reducer=failed.reducer,
                    )],
                ),
            ),
        )
        if not watch.age_alert:
            return
        age = CATALOG["backup-age"]
        hours = watch.interval_hours + self._args.settings.backup_age_margin_hours
        self._alert(
            age, f"{watch.kind}-age", f"No successful {watch.label} for {hours:.0f} h", watch.kind,
            self._no_events(
                f"no successful {watch.label} in {hours:.0f} h",
                BACKUP_SUCCESS_METRIC,
                job.apply(lambda name: f'monitored_resource="cloud_run_job",job_name="{name}",'
                                       f'command="{watch.command}"'),
                hours, age, watch.created,
            ),
            enabled=watch.active,
            metric=BACKUP_SUCCESS_METRIC,
        )

    def _transfer_alerts(self, watch: TransferWatch) -> None:
        jobs = pulumi.Output.all(*watch.job_names)
        self._alert(
            CATALOG["transfer-failed"], f"transfer-{watch.slug}-failed", f"Cross-region copy {watch.slug} failed",
            watch.slug,
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"transfer {watch.slug} reported a failure",
                condition_matched_log=gcp.monitoring.AlertPolicyConditionConditionMatchedLogArgs(
                    filter=jobs.apply(lambda names: 'resource.type="storage_transfer_job" AND '
                                                    f'resource.labels.job_id=({" OR ".join(chr(34) + n + chr(34) for n in names)}) AND '
                                                    'jsonPayload.status.statusCode!="OK"'),
                ),
            ),
        )
        behind = CATALOG["transfer-behind"]
        hours = watch.interval_hours + self._args.settings.backup_age_margin_hours
        self._alert(
            behind, f"transfer-{watch.slug}-behind", f"Cross-region copy {watch.slug} copied nothing for {hours:.0f} h",
            watch.slug,
            self._no_events(
                f"transfer {watch.slug} copied nothing in {hours:.0f} h",
                TRANSFER_COPY_METRIC,
                jobs.apply(lambda names: f'monitored_resource="storage_transfer_job",job_id=~"{"|".join(names)}"'),
                hours, behind, watch.created,
            ),
            metric=TRANSFER_COPY_METRIC,
        )

    def _uptime(self, target: UptimeTarget) -> None:
        args, settings = self._args, self._args.settings.uptime
        check = gcp.monitoring.UptimeCheckConfig(
            f"{self._name}-check-{target.slug}",
            project=args.project,
            display_name=f"raptorflow-dr {target.host}{args.health_path}",
            period=f"{settings.period_seconds}s",
            timeout=f"{settings.timeout_seconds}s",
            selected_regions=list(settings.regions),
            monitored_resource=gcp.monitoring.UptimeCheckConfigMonitoredResourceArgs(
                type="uptime_url", labels={"project_id": args.project, "host": target.host},
            ),
            http_check=gcp.monitoring.UptimeCheckConfigHttpCheckArgs(
                path=args.health_path, port=443, use_ssl=True, validate_ssl=target.validate_ssl,
                request_method="GET", headers={"Host": target.host_header} if target.host_header else None,
                accepted_response_status_codes=[
                    gcp.monitoring.UptimeCheckConfigHttpCheckAcceptedResponseStatusCodeArgs(status_value=200)
                ],
            ),
            user_labels={**args.labels, "raptorflow-target": target.slug},
            opts=pulumi.ResourceOptions(parent=self),
        )
        uptime = CATALOG["uptime"]
        self._alert(
            uptime, f"uptime-{target.slug}", f"{target.host}{args.health_path} failing", target.slug,
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"{target.host} health check failing from more than one region",
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=check.uptime_check_id.apply(
                        lambda check_id: 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
                                         f'resource.type="uptime_url" AND metric.labels.check_id="{check_id}"'
                    ),
                    comparison=uptime.comparison,
                    threshold_value=uptime.threshold,
                    duration=f"{UPTIME_FAILED_PERIODS * settings.period_seconds}s",
                    aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                        alignment_period=f"{uptime.window_seconds}s", per_series_aligner=uptime.aligner,
                        cross_series_reducer=uptime.reducer, group_by_fields=list(uptime.group_by),
                    )],
                ),
            ),
            serves_traffic=target.serves_traffic,
            filled={"host": target.host},
        )

    def _audit_alert(self) -> None:
        buckets = pulumi.Output.all(*[g.bucket_name for g in self._args.guarded])
        keys = pulumi.Output.all(*[g.kms_key_id for g in self._args.guarded])
        query = pulumi.Output.all(buckets, keys).apply(
            lambda pair: '(protoPayload.serviceName="storage.googleapis.com" AND '
                         'protoPayload.methodName=("storage.buckets.delete" OR "storage.buckets.update") AND '
                         f'resource.labels.bucket_name=({" OR ".join(chr(34) + b + chr(34) for b in pair[0])})) OR '
                         '(protoPayload.serviceName="cloudkms.googleapis.com" AND '
                         'protoPayload.methodName="DestroyCryptoKeyVersion" AND '
                         f'({" OR ".join("protoPayload.resourceName:" + chr(34) + k + chr(34) for k in pair[1])}))'
        )
        self._alert(
            CATALOG["backup-tampering"], "backup-tampering",
            "Backup bucket deleted or changed, or a backup key scheduled for destruction", "backup-storage",
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name="audit log: delete/update of a backup bucket or key destruction",
                condition_matched_log=gcp.monitoring.AlertPolicyConditionConditionMatchedLogArgs(filter=query),
            ),
        )
