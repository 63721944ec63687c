"""Uptime checks probe as the plan says: HTTPS on 443 with a verified certificate, GET, 200, often and widely."""

from __future__ import annotations

import ipaddress

from pulumi_policy import Severity

from core.limits import UPTIME_PERIOD_SECONDS, UPTIME_REGIONS, UPTIME_TIMEOUT_SECONDS

from .._base import UPTIME_CHECK, Label, Weakening, duration_seconds, get, number, resource_policy

PERIODS = (60, 300, 600, 900)
"""The periods Cloud Monitoring accepts for an uptime check (UptimeCheckConfig.period)."""
CONFIG = {
    "maxPeriodSeconds": {"type": "number", "description": "Longest check period, in seconds.",
                         "default": UPTIME_PERIOD_SECONDS},
    "maxTimeoutSeconds": {"type": "number", "description": "Longest wait for one probe, in seconds.",
                          "default": UPTIME_TIMEOUT_SECONDS},
    "minRegions": {"type": "integer", "description": "Fewest checker regions.", "default": len(UPTIME_REGIONS)},
}


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check(args, violate):
    if args.resource_type != UPTIME_CHECK:
        return
    config, props = args.get_config(), args.props
    host = str(get(props, "monitoredResource.labels.host") or "")
    http = props.get("httpCheck") or {}
    problems = []
    period, timeout = duration_seconds(props.get("period")), duration_seconds(props.get("timeout"))
    if period not in PERIODS or period > config.get("maxPeriodSeconds", UPTIME_PERIOD_SECONDS):
        problems.append(f"period {props.get('period')}")
    if not timeout or timeout > config.get("maxTimeoutSeconds", UPTIME_TIMEOUT_SECONDS) or (period and timeout > period):
        problems.append(f"timeout {props.get('timeout')}")
    if len(props.get("selectedRegions") or []) < config.get("minRegions", len(UPTIME_REGIONS)):
        problems.append(f"regions {props.get('selectedRegions')}")
    if not get(props, f"userLabels.{Label.TARGET}"):
        problems.append(f"no {Label.TARGET} label (the alert and the drill find the check by it)")
    if get(props, "monitoredResource.type") != "uptime_url" or not host or not get(props, "monitoredResource.labels.project_id"):
        problems.append("no uptime_url resource with host and project_id")
    if http.get("useSsl") is not True or number(http.get("port")) != 443:
        problems.append("not HTTPS on port 443")
    if http.get("validateSsl") is not True and not _is_address(host):
        problems.append("certificate not validated (only an IP-address target may skip it)")
    elif http.get("validateSsl") is True and _is_address(host):
        problems.append("certificate validated on an IP-address target (no certificate names an address: it fails)")
    if http.get("requestMethod", "GET") != "GET":
        problems.append(f"method {http.get('requestMethod')}")
    codes = [number(c.get("statusValue")) for c in http.get("acceptedResponseStatusCodes") or []]
    if codes != [200.0]:
        problems.append(f"accepts {codes or 'any 2xx'} instead of exactly 200")
    if not str(http.get("path") or "").startswith("/") or str(http.get("path")).rstrip("/") in ("", "/"):
        problems.append(f"path {http.get('path')!r} is not a health endpoint")
    if problems:
        violate(f"uptime check {args.name} does not probe as planned: {'; '.join(problems)}")


POLICY = resource_policy(
    "raptorflow-monitoring-uptime-checks-as-planned",
    f"Uptime checks probe HTTPS on 443 with a validated certificate (IP-address targets excepted), GET, exactly 200, "
    f"every {UPTIME_PERIOD_SECONDS} s or more often, from at least {len(UPTIME_REGIONS)} regions. Cloud Monitoring "
    "uptime checks have no on/off switch: one is on while it exists and its alert is enabled (other rules).",
    "Cloud Monitoring uptime checks",
    Severity.HIGH,
    "leave the checks to SiteMonitoring and tune them in the stack's monitoring.uptime settings within the limits",
    _check,
    config=CONFIG,
)

WEAKENINGS = [
    Weakening("dr", "uptime check monitoring-check-www-public does not probe as planned: period 600s",
              "monitoring-check-www-public", {"period": "600s"}),
    Weakening("dr", "uptime check monitoring-check-api-public does not probe as planned: certificate not validated "
              "(only an IP-address target may skip it)", "monitoring-check-api-public", {"httpCheck.validateSsl": False}),
]
