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

import pulumi
import pulumi_gcp as gcp

from . import defaults
from .stack_config import MonitoringSettings

BACKUP_SUCCESS_METRIC = "raptorflow_backup_success"
TRANSFER_COPY_METRIC = "raptorflow_transfer_copies"


@dataclass(frozen=True)
class BackupWatch:
    """A scheduled run of the backup job: a backup of one kind, the restore check, or the DNS export."""

    job_name: pulumi.Input[str]
    kind: str  # full | schema | restore-check | dns-export
    interval_hours: float  # longest gap between two scheduled runs
    active: bool  # False for a paused standby schedule: no age alert while nothing is expected
    command: str = "backup"  # the job's subcommand, as its log line names it


@dataclass(frozen=True)
class TransferWatch:
    """The Storage Transfer Service jobs that keep one replica: the daily sync and, where on, event-driven
    replication. With replication on, the daily job finds nothing left to copy, so copies count from either."""

    job_names: tuple[pulumi.Input[str], ...]
    slug: str
    interval_hours: float


@dataclass(frozen=True)
class UptimeTarget:
    """An HTTPS endpoint whose `/health` must answer 200."""

    host: str
    slug: str
    serves_traffic: bool  # the active site's targets and the public hostnames page P0; the other site's P2
    validate_ssl: bool = True


@dataclass(frozen=True)
class GuardedStorage:
    """A backup bucket and its key: deleting or loosening them is a P0."""

    bucket_name: pulumi.Input[str]
    kms_key_id: pulumi.Input[str]


@dataclass
class SiteMonitoringArgs:
    """Inputs of a SiteMonitoring."""

    project: str
    """Project whose Cloud Monitoring holds the checks and alerts."""
    settings: MonitoringSettings
    """Channels, uptime timings, backup-age margin and runbook URL, as validated stack config."""
    labels: dict[str, str]
    """User labels on every alert policy and check."""
    health_path: str = defaults.HEALTH_PATH
    """Path of the health endpoint on every uptime target."""
    slack_auth_token: pulumi.Input[str] | None = None
    """The Slack token (a Pulumi secret), when a Slack channel is configured."""
    backups: list[BackupWatch] = field(default_factory=list)
    transfers: list[TransferWatch] = field(default_factory=list)
    uptime: list[UptimeTarget] = field(default_factory=list)
    guarded: list[GuardedStorage] = field(default_factory=list)


class SiteMonitoring(pulumi.ComponentResource):
    """Notification channels, log-based metrics, uptime checks and alert policies of one site."""

    alert_count: int
    """How many alert policies were created."""

    def __init__(self, name: str, args: SiteMonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:monitoring:SiteMonitoring", name, None, opts)
        self._name, self._args = name, args
        self._channels = self._notification_channels()
        self.alert_count = 0
        child = pulumi.ResourceOptions(parent=self)
        # Log-based metrics by name: an alert on one must wait for it (Monitoring refuses unknown metrics).
        self._metrics: dict[str, gcp.logging.Metric] = {}

        if args.backups:
            self._metrics[BACKUP_SUCCESS_METRIC] = gcp.logging.Metric(
                f"{name}-backup-success",
                name=BACKUP_SUCCESS_METRIC,
                project=args.project,
                description="Successful runs of the backup job, from its structured log line",
                filter='resource.type="cloud_run_job" AND jsonPayload.event="raptorflow.backup" '
                       'AND jsonPayload.result="success"',
                metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                    metric_kind="DELTA", value_type="INT64",
                    labels=[gcp.logging.MetricMetricDescriptorLabelArgs(key="kind"),
                            gcp.logging.MetricMetricDescriptorLabelArgs(key="command")],
                ),
                label_extractors={"kind": "EXTRACT(jsonPayload.kind)", "command": "EXTRACT(jsonPayload.command)"},
                opts=child,
            )
        for backup in args.backups:
            self._backup_alerts(backup)

        if args.transfers:
            self._metrics[TRANSFER_COPY_METRIC] = gcp.logging.Metric(
                f"{name}-transfer-copies",
                name=TRANSFER_COPY_METRIC,
                project=args.project,
                description="Objects copied by Storage Transfer Service jobs",
                filter='resource.type="storage_transfer_job" AND jsonPayload.action="COPY" '
                       'AND jsonPayload.status.statusCode="OK"',
                metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(metric_kind="DELTA", value_type="INT64"),
                opts=child,
            )
        for transfer in args.transfers:
            self._transfer_alerts(transfer)
        for target in args.uptime:
            self._uptime(target)
        if args.guarded:
            self._audit_alert()
        self.register_outputs({"alertCount": self.alert_count})

    # ------------------------------------------------------------ building blocks

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

    def _alert(
        self,
        slug: str,
        title: str,
        severity: str,
        alert: str,
        target: str,
        condition: gcp.monitoring.AlertPolicyConditionArgs,
        meaning: str,
        steps: tuple[str, str, str],
        log_match: bool = False,
        enabled: bool = True,
        metric: str | None = None,
    ) -> None:
        settings = self._args.settings
        level = defaults.SEVERITIES[severity]
        runbook = f"{settings.runbook_base_url}/alerts.md#{alert}"
        content = "\n".join([
            f"**{severity}** - respond within {level['respond']}; post in #incidents.",
            "",
            meaning,
            "",
            "First steps:",
            *(f"{number}. {step}" for number, step in enumerate(steps, 1)),
            "",
            f"Runbook: {runbook}",
        ])
        strategy = gcp.monitoring.AlertPolicyAlertStrategyArgs(
            auto_close=f"{defaults.ALERT_AUTO_CLOSE_SECONDS}s",
            notification_rate_limit=gcp.monitoring.AlertPolicyAlertStrategyNotificationRateLimitArgs(
                period=f"{defaults.ALERT_NOTIFICATION_RATE_LIMIT_SECONDS}s"
            ) if log_match else None,
        )
        gcp.monitoring.AlertPolicy(
            f"{self._name}-{slug}",
            project=self._args.project,
            display_name=f"[{severity}] {title}",
            combiner="OR",
            conditions=[condition],
            notification_channels=self._channels,
            severity=level["cloud"],
            enabled=enabled,
            user_labels={**self._args.labels, "severity": severity.lower(), "raptorflow-alert": alert,
                         "raptorflow-target": target},
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                subject=f"[{severity}] {title}", content=content, mime_type="text/markdown",
            ),
            alert_strategy=strategy,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._metrics[metric]] if metric else None),
        )
        self.alert_count += 1

    def _no_events(self, display_name: str, metric: str, selector: pulumi.Input[str],
                   hours: float) -> gcp.monitoring.AlertPolicyConditionArgs:
        """A PromQL condition: fewer than one `metric` event in `hours` - also true when there never was any."""
        window = f"{round(hours)}h"
        query = pulumi.Output.from_input(selector).apply(
            lambda labels: f"(sum(increase(logging_googleapis_com:user_{metric}{{{labels}}}[{window}])) "
                           f"or vector(0)) < 1"
        )
        return gcp.monitoring.AlertPolicyConditionArgs(
            display_name=display_name,
            condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                query=query, duration="0s", evaluation_interval="300s",
                # A new log-based metric has no data until its first log line: without this Monitoring
                # refuses the query ("metric ... not found").
                disable_metric_validation=True,
            ),
        )

    # ------------------------------------------------------------ alerts per watched thing

    def _backup_alerts(self, watch: BackupWatch) -> None:
        job = pulumi.Output.from_input(watch.job_name)
        restore = watch.command == "restore-check"
        label = {"restore-check": "restore check", "export-dns": "DNS zone export"}.get(
            watch.command, f"{watch.kind} backup")
        self._alert(
            f"{watch.kind}-failed",
            f"Database {label} failed",
            "P1",
            {"restore-check": "restore-check-failed", "export-dns": "dns-export-failed"}.get(
                watch.command, "backup-failed"),
            watch.kind,
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"{label} execution failed",
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=job.apply(
                        lambda name: 'metric.type="run.googleapis.com/job/completed_execution_count" AND '
                                     f'resource.type="cloud_run_job" AND resource.labels.job_name="{name}" AND '
                                     'metric.labels.result="failed"'
                    ),
                    comparison="COMPARISON_GT",
                    threshold_value=0,
                    duration="0s",
                    aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                        alignment_period="300s", per_series_aligner="ALIGN_DELTA", cross_series_reducer="REDUCE_SUM",
                    )],
                ),
            ),
            ("A restore from the newest dump did not verify: the backups may not be restorable."
             if restore else f"The scheduled {label} exited non-zero: no new copy exists."),
            ("Open the job's last execution logs; the JSON line's `failure` names the cause.",
             "Exit 3: check the database is reachable and the URL secret is current; 4: check the bucket.",
             "Re-run: gcloud run jobs execute <job> --wait; confirm a new manifest appears."),
        )
        if restore:
            return
        hours = watch.interval_hours + self._args.settings.backup_age_margin_hours
        self._alert(
            f"{watch.kind}-age",
            f"No successful {label} for {hours:.0f} h",
            "P1",
            "backup-age",
            watch.kind,
            self._no_events(
                f"no successful {label} in {hours:.0f} h",
                BACKUP_SUCCESS_METRIC,
                job.apply(lambda name: f'monitored_resource="cloud_run_job",job_name="{name}",'
                                       f'command="{watch.command}"'),
                hours,
            ),
            f"The newest {label} is older than its schedule allows ({watch.interval_hours:.0f} h + margin): "
            "the recovery point is slipping.",
            ("Check the Cloud Scheduler job ran and the Cloud Run job started.",
             "Look for a failed-backup alert with the cause.",
             "Take a backup now: gcloud run jobs execute <job> --wait."),
            enabled=watch.active,
            metric=BACKUP_SUCCESS_METRIC,
        )

    def _transfer_alerts(self, watch: TransferWatch) -> None:
        jobs = pulumi.Output.all(*watch.job_names)
        self._alert(
            f"transfer-{watch.slug}-failed",
            f"Cross-region copy {watch.slug} failed",
            "P1",
            "transfer-failed",
            watch.slug,
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"transfer {watch.slug} reported a failure",
                condition_matched_log=gcp.monitoring.AlertPolicyConditionConditionMatchedLogArgs(
                    filter=jobs.apply(lambda names: 'resource.type="storage_transfer_job" AND '
                                                    f'resource.labels.job_id=({" OR ".join(chr(34) + n + chr(34) for n in names)}) AND '
                                                    'jsonPayload.status.statusCode!="OK"'),
                ),
            ),
            "Storage Transfer Service could not copy objects into the EU replica.",
            ("Open the transfer job's last operation in the console and read its error breakdown.",
             "Check the transfer agent still has read on the source and create on the replica.",
             "Run the job now from the console once fixed and watch it complete."),
            log_match=True,
        )
        hours = watch.interval_hours + self._args.settings.backup_age_margin_hours
        self._alert(
            f"transfer-{watch.slug}-behind",
            f"Cross-region copy {watch.slug} copied nothing for {hours:.0f} h",
            "P1",
            "transfer-behind",
            watch.slug,
            self._no_events(
                f"transfer {watch.slug} copied nothing in {hours:.0f} h",
                TRANSFER_COPY_METRIC,
                jobs.apply(lambda names: f'monitored_resource="storage_transfer_job",job_id=~"{"|".join(names)}"'),
                hours,
            ),
            "The replica has received no new object for longer than the transfer schedule allows.",
            ("Check the transfer job is enabled and its last run's status.",
             "Check the source received new objects at all (a quiet day for user files is possible).",
             "Run the job now and confirm objects are copied."),
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
                request_method="GET",
                accepted_response_status_codes=[
                    gcp.monitoring.UptimeCheckConfigHttpCheckAcceptedResponseStatusCodeArgs(status_value=200)
                ],
            ),
            user_labels={**args.labels, "raptorflow-target": target.slug},
            opts=pulumi.ResourceOptions(parent=self),
        )
        severity = "P0" if target.serves_traffic else "P2"
        self._alert(
            f"uptime-{target.slug}",
            f"{target.host}{args.health_path} failing",
            severity,
            "uptime",
            target.slug,
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name=f"{target.host} health check failing from more than one region",
                condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
                    filter=check.uptime_check_id.apply(
                        lambda check_id: 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
                                         f'resource.type="uptime_url" AND metric.labels.check_id="{check_id}"'
                    ),
                    comparison="COMPARISON_GT",
                    threshold_value=1,
                    duration=f"{2 * settings.period_seconds}s",
                    aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                        alignment_period="1200s", per_series_aligner="ALIGN_NEXT_OLDER",
                        cross_series_reducer="REDUCE_COUNT_FALSE", group_by_fields=["resource.label.*"],
                    )],
                ),
            ),
            ("Users are affected: this endpoint serves traffic now." if target.serves_traffic
             else "The site that would take over on failover is unhealthy: failover would not help now."),
            (f"curl -v https://{target.host}{args.health_path} from two networks.",
             "Check the origin's deployment and its database connectivity.",
             "If the active site is down for good: docs/runbooks/failover.md."),
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
            "backup-tampering",
            "Backup bucket deleted or changed, or a backup key scheduled for destruction",
            "P0",
            "backup-tampering",
            "backup-storage",
            gcp.monitoring.AlertPolicyConditionArgs(
                display_name="audit log: delete/update of a backup bucket or key destruction",
                condition_matched_log=gcp.monitoring.AlertPolicyConditionConditionMatchedLogArgs(filter=query),
            ),
            "Someone deleted or changed a backup bucket (retention, protection) or scheduled a backup key "
            "version's destruction. Outside a reviewed `pulumi up`, treat it as a security incident.",
            ("Find the principal in the audit log entry; match it against a reviewed change.",
             "If unexpected: revoke the principal's access and restore the setting from the stack (`pulumi up`).",
             "For a key: `gcloud kms keys versions restore` within the destruction delay."),
            log_match=True,
        )
