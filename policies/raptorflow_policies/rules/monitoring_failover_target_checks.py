"""Every failover target (public name, primary and standby) has an uptime check and an alert."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import ALERT_POLICY, UPTIME_CHECK, Label, Weakening, failover_targets, get, labels, of_type, stack_policy


def _check(args, violate):
    checks = {get(c.props, "monitoredResource.labels.host"): c for c in of_type(args.resources, UPTIME_CHECK)}
    alerted = {labels(a.props).get(Label.TARGET) for a in of_type(args.resources, ALERT_POLICY)
               if labels(a.props).get(Label.ALERT) == "uptime" and a.props.get("notificationChannels")}
    for host, urn in failover_targets(args.resources):
        check = checks.get(host)
        if check is None:
            violate(f"failover target {host} has no uptime check", urn)
        elif labels(check.props).get(Label.TARGET) not in alerted:
            violate(f"failover target {host} has an uptime check but no alert with a notification channel", urn)


POLICY = stack_policy(
    "raptorflow-monitoring-failover-target-checks",
    "Every failover target (public name, primary and standby) has an uptime check and an alert.",
    "load-balancer-health-checks",
    Severity.HIGH,
    "SiteMonitoring adds an uptime check and alert for each hostname and target it is handed",
    _check,
)

WEAKENINGS = [
    Weakening("dr", "failover target api-eu.raptorflow.app has no uptime check",
              removed=("monitoring-check-api-standby",)),
    Weakening("dr", "failover target www.raptorflow.app has an uptime check but no alert with a notification channel",
              removed=("monitoring-uptime-www-public",)),
]
