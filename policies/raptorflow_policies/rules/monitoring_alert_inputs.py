"""What the alerts read and notify exists: every channel of the stack on every alert, each with its address, and
every log-based metric an alert counts, as a DELTA INT64 counter."""

from __future__ import annotations

import re

from pulumi_policy import Severity

from .._base import (
    ALERT_POLICY,
    BACKUP_SUCCESS_METRIC,
    DELETE,
    ResourceType,
    Weakening,
    condition_text,
    of_type,
    stack_policy,
)

CHANNEL = ResourceType.NOTIFICATION_CHANNEL
METRIC = ResourceType.LOG_METRIC
ADDRESS = {"email": "email_address", "slack": "channel_name", "pagerduty": "service_key", "webhook_tokenauth": "url",
           "sms": "number"}
"""The label that says where a channel of each type delivers (Cloud Monitoring's channel descriptors)."""


def _check(args, violate):
    channels = of_type(args.resources, CHANNEL)
    for channel in channels:
        key = ADDRESS.get(str(channel.props.get("type")))
        if key and not (channel.props.get("labels") or {}).get(key):
            violate(f"notification channel {channel.name} ({channel.props.get('type')}) has no {key}: it delivers "
                    "nowhere", channel.urn)
    metrics = {m.props.get("name"): m for m in of_type(args.resources, METRIC)}
    counted: set[str] = set()
    for alert in of_type(args.resources, ALERT_POLICY):
        name = alert.props.get("displayName") or alert.name
        referenced = alert.props.get("notificationChannels") or []
        if referenced and len(referenced) != len(channels):
            violate(f"alert {name} notifies {len(referenced)} channels; the stack has {len(channels)} and every alert "
                    "goes to each", alert.urn)
        for metric in re.findall(r"logging_googleapis_com:user_(\w+)", condition_text(alert.props)):
            if metric not in metrics:
                violate(f"alert {name} counts the log-based metric {metric}, which the stack does not define",
                        alert.urn)
            else:
                counted.add(metric)
    for metric in sorted(counted):
        descriptor = metrics[metric].props.get("metricDescriptor") or {}
        if (descriptor.get("metricKind"), descriptor.get("valueType")) != ("DELTA", "INT64"):
            violate(f"log-based metric {metric} is {descriptor.get('metricKind')} {descriptor.get('valueType')}; "
                    "alerts count it as a DELTA INT64 counter", metrics[metric].urn)


POLICY = stack_policy(
    "raptorflow-monitoring-alert-inputs",
    "Every alert notifies every notification channel of the stack, each channel has its address, and every "
    "log-based metric an alert counts exists as a DELTA INT64 counter.",
    "Cloud Monitoring alerting",
    Severity.HIGH,
    "keep the channels and log-based metrics SiteMonitoring creates with the alerts",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "notification channel monitoring-email-0 (email) has no email_address: it delivers nowhere",
              "monitoring-email-0", {"labels.email_address": DELETE}),
    Weakening("prod", f"log-based metric {BACKUP_SUCCESS_METRIC} is GAUGE INT64; alerts count it as a DELTA INT64 "
              "counter",
              "monitoring-backup-success", {"metricDescriptor.metricKind": "GAUGE"}),
]
