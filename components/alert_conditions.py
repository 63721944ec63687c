"""The conditions of SiteMonitoring's alert policies and the filters of its log-based metrics: one function per
kind of watched thing, each returning a condition's arguments (SiteMonitoring creates the policies).

What they match is named in core.contracts (the backup job's log line, the `job_name` a Cloud Run alert names)
and their figures come from the alert catalog (core/alerts.py), so the policy pack reads the same names.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pulumi
import pulumi_gcp as gcp

from core.alerts import UPTIME_FAILED_PERIODS, AlertKind
from core.contracts import SUCCESS_LINES, LogField, job_name_match, payload

BACKUP_SUCCESS_FILTER = " AND ".join(('resource.type="cloud_run_job"', *SUCCESS_LINES))
"""The backup job's success lines: what the success metric counts."""
BACKUP_SUCCESS_LABELS = {field.value: f"EXTRACT({payload(field)})" for field in (LogField.KIND, LogField.COMMAND)}
"""The success metric's labels, each extracted from the log line's field of the same name."""
TRANSFER_COPY_METRIC = "raptorflow_transfer_copies"
TRANSFER_COPY_FILTER = ('resource.type="storage_transfer_job" AND jsonPayload.action="COPY" '
                        'AND jsonPayload.status.statusCode="OK"')
"""The objects Storage Transfer Service jobs copied."""


def due_after(created: str | None, hours: float) -> int:
    """The Unix time from which a missing event alerts: `hours` after `created` (RFC 3339); 0 when the creation
    time is not known (the condition then fires on data alone)."""
    if not created:
        return 0
    start = datetime.fromisoformat(created.replace("Z", "+00:00"))
    return int(start.timestamp() + hours * 3600)


def _quoted(names: Sequence[str], separator: str, term: str = "") -> str:
    return separator.join(f'{term}"{name}"' for name in names)


def failed_executions(job_name: pulumi.Input[str], label: str, kind: AlertKind) -> gcp.monitoring.AlertPolicyConditionArgs:
    """More than `kind.threshold` failed executions of Cloud Run job `job_name` in a window."""
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=f"{label} execution failed",
        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
            filter=pulumi.Output.from_input(job_name).apply(
                lambda name: 'metric.type="run.googleapis.com/job/completed_execution_count" AND '
                             f'resource.type="cloud_run_job" AND resource.labels.{job_name_match(name)} AND '
                             'metric.labels.result="failed"'
            ),
            comparison=kind.comparison,
            threshold_value=kind.threshold,
            duration="0s",
            aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                alignment_period=f"{kind.window_seconds}s", per_series_aligner=kind.aligner,
                cross_series_reducer=kind.reducer,
            )],
        ),
    )


def backup_successes(job_name: pulumi.Input[str], command: str) -> pulumi.Output[str]:
    """The PromQL selector of the success metric's series of one job and subcommand."""
    return pulumi.Output.from_input(job_name).apply(
        lambda name: f'monitored_resource="cloud_run_job",{job_name_match(name)},{LogField.COMMAND.value}="{command}"')


def transfer_copies(job_names: Sequence[pulumi.Input[str]]) -> pulumi.Output[str]:
    """The PromQL selector of the copy metric's series of the given transfer jobs."""
    return pulumi.Output.all(*job_names).apply(
        lambda names: f'monitored_resource="storage_transfer_job",job_id=~"{"|".join(names)}"')


def no_events(display_name: str, metric: str, selector: pulumi.Input[str], hours: float,
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


def transfer_failed(job_names: Sequence[pulumi.Input[str]], slug: str) -> gcp.monitoring.AlertPolicyConditionArgs:
    """A log line of one of the transfer jobs that reports a failure."""
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=f"transfer {slug} reported a failure",
        condition_matched_log=gcp.monitoring.AlertPolicyConditionConditionMatchedLogArgs(
            filter=pulumi.Output.all(*job_names).apply(
                lambda names: 'resource.type="storage_transfer_job" AND '
                              f'resource.labels.job_id=({_quoted(names, " OR ")}) AND '
                              'jsonPayload.status.statusCode!="OK"'),
        ),
    )


def uptime_failing(host: str, check_id: pulumi.Output[str], kind: AlertKind,
                   period_seconds: int) -> gcp.monitoring.AlertPolicyConditionArgs:
    """Uptime check `check_id` failing from more than one region for UPTIME_FAILED_PERIODS check periods."""
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name=f"{host} health check failing from more than one region",
        condition_threshold=gcp.monitoring.AlertPolicyConditionConditionThresholdArgs(
            filter=check_id.apply(
                lambda check: 'metric.type="monitoring.googleapis.com/uptime_check/check_passed" AND '
                              f'resource.type="uptime_url" AND metric.labels.check_id="{check}"'
            ),
            comparison=kind.comparison,
            threshold_value=kind.threshold,
            duration=f"{UPTIME_FAILED_PERIODS * period_seconds}s",
            aggregations=[gcp.monitoring.AlertPolicyConditionConditionThresholdAggregationArgs(
                alignment_period=f"{kind.window_seconds}s", per_series_aligner=kind.aligner,
                cross_series_reducer=kind.reducer, group_by_fields=list(kind.group_by),
            )],
        ),
    )


def tampering(bucket_names: Sequence[pulumi.Input[str]],
              kms_key_ids: Sequence[pulumi.Input[str]]) -> gcp.monitoring.AlertPolicyConditionArgs:
    """An audit log entry deleting or updating one of the buckets, or scheduling a version of one of the keys
    for destruction."""
    query = pulumi.Output.all(pulumi.Output.all(*bucket_names), pulumi.Output.all(*kms_key_ids)).apply(
        lambda pair: '(protoPayload.serviceName="storage.googleapis.com" AND '
                     'protoPayload.methodName=("storage.buckets.delete" OR "storage.buckets.update") AND '
                     f'resource.labels.bucket_name=({_quoted(pair[0], " OR ")})) OR '
                     '(protoPayload.serviceName="cloudkms.googleapis.com" AND '
                     'protoPayload.methodName="DestroyCryptoKeyVersion" AND '
                     f'({_quoted(pair[1], " OR ", "protoPayload.resourceName:")}))'
    )
    return gcp.monitoring.AlertPolicyConditionArgs(
        display_name="audit log: delete/update of a backup bucket or key destruction",
        condition_matched_log=gcp.monitoring.AlertPolicyConditionConditionMatchedLogArgs(filter=query),
    )
