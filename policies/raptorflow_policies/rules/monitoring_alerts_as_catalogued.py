"""Every alert policy is what the alert catalog (core/alerts.py) says its kind is: severity, condition, strategy."""

from __future__ import annotations

import re
import time

from pulumi_policy import Severity

from core.alerts import (
    ALERT_AUTO_CLOSE_SECONDS,
    ALERT_NOTIFICATION_RATE_LIMIT_SECONDS,
    CATALOG,
    SEVERITIES,
    UPTIME_FAILED_PERIODS,
)

from .._base import (
    ALERT_POLICY,
    DELETE,
    UPTIME_CHECK,
    Label,
    Weakening,
    duration_seconds,
    get,
    labels,
    number,
    of_type,
    stack_policy,
)

LABELS = (Label.ALERT, Label.TARGET, Label.SEVERITY)


def _threshold(kind, condition, uptime_period: float | None) -> list[str]:
    threshold = condition.get("conditionThreshold")
    if not isinstance(threshold, dict):
        return ["its condition is not a threshold condition"]
    aggregation = {"alignmentPeriod": f"{kind.window_seconds}s", "perSeriesAligner": kind.aligner,
                   "crossSeriesReducer": kind.reducer, **({"groupByFields": list(kind.group_by)} if kind.group_by else {})}
    wanted_duration = UPTIME_FAILED_PERIODS * uptime_period if kind.slug == "uptime" and uptime_period else 0.0
    problems = []
    if threshold.get("comparison") != kind.comparison:
        problems.append(f"comparison {threshold.get('comparison')}, not {kind.comparison}")
    if number(threshold.get("thresholdValue")) != kind.threshold:
        problems.append(f"threshold {threshold.get('thresholdValue')}, not {kind.threshold:g}")
    if (threshold.get("aggregations") or []) != [aggregation]:
        problems.append(f"aggregations {threshold.get('aggregations')}, not [{aggregation}]")
    if duration_seconds(threshold.get("duration")) != wanted_duration:
        problems.append(f"duration {threshold.get('duration')}, not {wanted_duration:g}s")
    return problems


def _absence(kind, condition) -> list[str]:
    promql = condition.get("conditionPrometheusQueryLanguage")
    if not isinstance(promql, dict):
        return ["its condition is not a PromQL absence condition"]
    problems = []
    query = str(promql.get("query") or "")
    # A fresh deploy is quiet until the first run was due: `... and on() (vector(time()) > DUE)`, where DUE is
    # the watched job's creation plus the window. It may not reach further than one window from now.
    grace = re.search(r" and on\(\) \(vector\(time\(\)\) > (\d+)\)$", query)
    body = query[:grace.start()] if grace else query
    if not re.search(rf"\bor vector\(0\)\) < {re.escape(f'{kind.threshold:g}')}\)?$", body):
        problems.append(f"query does not fire below {kind.threshold:g} (including when there was never a run)")
    window = re.search(r"\[(\d+)h\]", query)
    if grace and window and int(grace[1]) > time.time() + (int(window[1]) + 1) * 3600:
        problems.append(f"query stays silent until {int(grace[1])} (Unix time), longer than its {window[1]} h window "
                        "after a first deploy")
    if promql.get("evaluationInterval") != f"{kind.window_seconds}s":
        problems.append(f"evaluationInterval {promql.get('evaluationInterval')}, not {kind.window_seconds}s")
    if duration_seconds(promql.get("duration")) != 0:
        problems.append(f"duration {promql.get('duration')}, not 0s")
    if promql.get("disableMetricValidation") is not True:
        problems.append("disableMetricValidation is off (Monitoring refuses a query on a metric with no data yet)")
    return problems


def _check(args, violate):
    periods = [duration_seconds(c.props.get("period")) for c in of_type(args.resources, UPTIME_CHECK)]
    uptime_period = max((p for p in periods if p), default=None)
    for alert in of_type(args.resources, ALERT_POLICY):
        props, name = alert.props, alert.props.get("displayName") or alert.name
        alert_labels = labels(props)
        missing = [label for label in LABELS if not alert_labels.get(label)]
        kind = CATALOG.get(alert_labels.get(Label.ALERT, ""))
        if missing or kind is None:
            violate(f"alert {name} lacks its catalog labels ({', '.join(missing) or Label.ALERT} missing or "
                    "unknown)", alert.urn)
            continue
        severity = str(alert_labels[Label.SEVERITY]).upper()
        problems = []
        if severity not in (kind.severity, kind.standby_severity):
            problems.append(f"severity {severity}, not {kind.severity}")
        elif props.get("severity") != SEVERITIES[severity]["cloud"] or not str(name).startswith(f"[{severity}] "):
            problems.append(f"Cloud Monitoring severity {props.get('severity')} or title does not say {severity}")
        if props.get("combiner") != "OR" or len(props.get("conditions") or []) != 1:
            problems.append("not one condition combined with OR")
        if get(props, "alertStrategy.autoClose") != f"{ALERT_AUTO_CLOSE_SECONDS}s":
            problems.append(f"autoClose {get(props, 'alertStrategy.autoClose')}, not {ALERT_AUTO_CLOSE_SECONDS}s")
        rate = get(props, "alertStrategy.notificationRateLimit.period")
        if kind.log_match and rate != f"{ALERT_NOTIFICATION_RATE_LIMIT_SECONDS}s":
            problems.append(f"notification rate limit {rate}, not {ALERT_NOTIFICATION_RATE_LIMIT_SECONDS}s")
        condition = (props.get("conditions") or [{}])[0]
        if kind.condition == "threshold":
            problems += _threshold(kind, condition, uptime_period)
        elif kind.condition == "absence":
            problems += _absence(kind, condition)
        elif not get(condition, "conditionMatchedLog.filter"):
            problems.append("its condition matches no log filter")
        if problems:
            violate(f"alert {name} is not the catalog's {kind.slug} alert: {'; '.join(problems)}", alert.urn)


POLICY = stack_policy(
    "raptorflow-monitoring-alerts-as-catalogued",
    "Every alert policy carries its catalog labels and is exactly its kind in the alert catalog (core/alerts.py): "
    "severity, one condition with the catalog's comparison, threshold, window, aligner, reducer and duration, "
    "auto-close and rate limit.",
    "DR plan severities, Cloud Monitoring alerting",
    Severity.HIGH,
    "change an alert's figures in core/alerts.py (the program builds every alert from it), not in the resource",
    _check,
)

_FAILED = "monitoring-full-failed"
WEAKENINGS = [
    Weakening("prod", "alert [P1] Database full backup failed is not the catalog's backup-failed alert: comparison "
              "COMPARISON_LT, not COMPARISON_GT", _FAILED, {"conditions.0.conditionThreshold.comparison": "COMPARISON_LT"}),
    Weakening("prod", "alert [P1] Database full backup failed is not the catalog's backup-failed alert: severity P3, "
              "not P1", _FAILED, {f"userLabels.{Label.SEVERITY}": "p3"}),
    Weakening("prod", f"alert [P1] No successful full backup for 30 h lacks its catalog labels ({Label.ALERT} "
              "missing or unknown)", "monitoring-full-age", {f"userLabels.{Label.ALERT}": DELETE}),
    Weakening("dr", "alert [P0] www.raptorflow.app/health failing is not the catalog's uptime alert: duration 1200s, "
              "not 120s", "monitoring-uptime-www-public", {"conditions.0.conditionThreshold.duration": "1200s"}),
    Weakening("dr", "alert [P1] Cross-region copy db-dumps copied nothing for 30 h is not the catalog's transfer-behind "
              "alert: query stays silent until 4102444800 (Unix time), longer than its 30 h window after a first "
              "deploy", "monitoring-transfer-db-dumps-behind",
              {"conditions.0.conditionPrometheusQueryLanguage.query":
               '((sum(increase(logging_googleapis_com:user_raptorflow_transfer_copies{job_id=~"x"}[30h])) or '
               'vector(0)) < 1) and on() (vector(time()) > 4102444800)'}),
]
