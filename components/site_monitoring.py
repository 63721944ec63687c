"""SiteMonitoring: the alerts of one site, derived from what the site provisions.

The caller hands over what exists - backup jobs, transfer jobs, failover
targets, guarded buckets and keys (components/monitoring_watches.py) - and every
item gets its alerts, so adding a schedule or a hostname adds its alerts without
touching this module. Each alert policy carries the plan's severity (P0-P3, as a
`severity` user label and Cloud Monitoring's own severity), documentation with
the first steps and a runbook link, every notification channel, and an alert
strategy (auto-close; a notification rate limit on log-match alerts) so a
flapping check does not page every minute. The conditions themselves are built
in components/alert_conditions.py.

Backup age is a *threshold* on a log-based count of successful backups over
the schedule's longest gap plus a margin (`... or vector(0)) < 1`), so it fires
even when no backup ever succeeded - a metric-absence condition would wait at
most 23.5 hours and never fire before the first data point.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from core.alerts import (
    ALERT_AUTO_CLOSE_SECONDS,
    ALERT_NOTIFICATION_RATE_LIMIT_SECONDS,
    CATALOG,
    SEVERITIES,
    AlertKind,
)
from core.contracts import BACKUP_SUCCESS_METRIC, Label

from . import alert_conditions as conditions
from .config import MonitoringSettings
from .monitoring_watches import BackupWatch, GuardedStorage, TransferWatch, UptimeTarget, Watched

__all__ = ["BackupWatch", "GuardedStorage", "SiteMonitoring", "SiteMonitoringArgs", "TransferWatch", "UptimeTarget",
           "Watched"]


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
                conditions.BACKUP_SUCCESS_FILTER, conditions.BACKUP_SUCCESS_LABELS,
            )
        for backup in args.backups:
            self._backup_alerts(backup)

        if args.transfers:
            self._log_metric(
                "transfer-copies", conditions.TRANSFER_COPY_METRIC, "Objects copied by Storage Transfer Service jobs",
                conditions.TRANSFER_COPY_FILTER, {},
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
            user_labels={**self._args.labels, Label.SEVERITY.value: severity.lower(), Label.ALERT.value: kind.slug,
                         Label.TARGET.value: target},
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                subject=f"[{severity}] {title}", mime_type="text/markdown",
                content=kind.documentation(self._args.settings.runbook_base_url, serves_traffic, filled),
            ),
            alert_strategy=strategy,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._metrics[metric]] if metric else None),
        )
        self.alert_count += 1

    # ------------------------------------------------------------ alerts per watched thing

    def _backup_alerts(self, watch: BackupWatch) -> None:
        failed = CATALOG[watch.failure_alert]
        self._alert(failed, f"{watch.kind}-failed", f"Database {watch.label} failed", watch.kind,
                    conditions.failed_executions(watch.job_name, watch.label, failed))
        if not watch.age_alert:
            return
        age = CATALOG["backup-age"]
        hours = watch.interval_hours + self._args.settings.backup_age_margin_hours
        self._alert(
            age, f"{watch.kind}-age", f"No successful {watch.label} for {hours:.0f} h", watch.kind,
            conditions.no_events(
                f"no successful {watch.label} in {hours:.0f} h", BACKUP_SUCCESS_METRIC,
                conditions.backup_successes(watch.job_name, watch.command), hours, age, watch.created,
            ),
            enabled=watch.active,
            metric=BACKUP_SUCCESS_METRIC,
        )

    def _transfer_alerts(self, watch: TransferWatch) -> None:
        self._alert(
            CATALOG["transfer-failed"], f"transfer-{watch.slug}-failed", f"Cross-region copy {watch.slug} failed",
            watch.slug, conditions.transfer_failed(watch.job_names, watch.slug),
        )
        behind = CATALOG["transfer-behind"]
        hours = watch.interval_hours + self._args.settings.backup_age_margin_hours
        self._alert(
            behind, f"transfer-{watch.slug}-behind", f"Cross-region copy {watch.slug} copied nothing for {hours:.0f} h",
            watch.slug,
            conditions.no_events(
                f"transfer {watch.slug} copied nothing in {hours:.0f} h", conditions.TRANSFER_COPY_METRIC,
                conditions.transfer_copies(watch.job_names), hours, behind, watch.created,
            ),
            metric=conditions.TRANSFER_COPY_METRIC,
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
            user_labels={**args.labels, Label.TARGET.value: target.slug},
            opts=pulumi.ResourceOptions(parent=self),
        )
        uptime = CATALOG["uptime"]
        self._alert(
            uptime, f"uptime-{target.slug}", f"{target.host}{args.health_path} failing", target.slug,
            conditions.uptime_failing(target.host, check.uptime_check_id, uptime, settings.period_seconds),
            serves_traffic=target.serves_traffic,
            filled={"host": target.host},
        )

    def _audit_alert(self) -> None:
        guarded = self._args.guarded
        self._alert(
            CATALOG["backup-tampering"], "backup-tampering",
            "Backup bucket deleted or changed, or a backup key scheduled for destruction", "backup-storage",
            conditions.tampering([g.bucket_name for g in guarded], [g.kms_key_id for g in guarded]),
        )
