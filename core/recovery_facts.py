"""What the recovery model reads off a list of resources: the facts its estimates start from.

Pure Python, no Pulumi types: `facts()` takes `(type, props)` pairs (a recorded plan, or what a CrossGuard stack
policy receives) and keeps only the figures core/recovery_model.py estimates from. The resources it reads are
listed in that module's docstring.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.alerts import CATALOG
from core.contracts import BackupKind, Command, Label, ResourceType, started_job
from core.limits import UPTIME_REGIONS
from core.paths import lookup
from core.schedule import max_interval_hours

UPTIME = CATALOG["uptime"]
"""The alert kind whose page starts a regional outage's recovery (P0 while its target serves traffic)."""


@dataclass(frozen=True)
class UptimeAlert:
    """A P0 uptime alert on an uptime check: what the plan's own settings say about how soon it pages."""

    target: str
    """The `raptorflow-target` both carry."""
    period_seconds: float
    """The check's period: each selected region probes once per period."""
    timeout_seconds: float
    """The check's timeout: a probe of a site that does not answer fails only then."""
    regions: int
    """How many regions probe."""
    comparison: str
    threshold: float
    """The condition fires when the count of regions whose probe failed is more than (or at least) this."""
    duration_seconds: float
    """How long the condition must hold before the alert fires."""

    @property
    def failing_regions(self) -> int:
        """The failing regions the condition needs: more than the threshold (COMPARISON_GT) or at least it."""
        if self.comparison == "COMPARISON_GT":
            return math.floor(self.threshold) + 1
        return max(1, math.ceil(self.threshold))

    @property
    def seconds(self) -> float | None:
        """period + timeout + duration; None when the condition needs more failing regions than probe.

        Every region probes once per period, so within one period after an outage each has probed the dead site;
        a probe of a site that does not answer fails only at its timeout; then the condition must hold for its
        duration. However many regions must fail, they fail in the same period."""
        if self.failing_regions > self.regions:
            return None
        return self.period_seconds + self.timeout_seconds + self.duration_seconds


@dataclass
class Facts:
    """The figures of one stack's (or both stacks') resources the recovery model uses."""

    declarations: list[Mapping[str, Any]] = field(default_factory=list)
    full_backups: list[tuple[str, float, bool]] = field(default_factory=list)  # cron, minutes, paused
    daily_copies: dict[str, float] = field(default_factory=dict)  # backup role -> interval minutes
    live_copies: set[str] = field(default_factory=set)  # backup roles with event-driven replication
    dns_ttls: list[tuple[int, bool]] = field(default_factory=list)  # ttl, proxied
    lb_monitors: list[tuple[float, int]] = field(default_factory=list)  # interval seconds, retries
    vercel_variables: int = 0  # env vars of the app that the failover flips
    uptime_alerts: list[UptimeAlert] = field(default_factory=list)  # P0 uptime alerts on a planned check

    def declared(self, path: str, default: Any = None) -> Any:
        """A declared figure (the first declaration that sets it), else `default`."""
        for declaration in self.declarations:
            value = lookup(declaration, path)
            if value not in (None, False):
                return value
        return lookup(self.declarations[0], path, default) if self.declarations else default

    @property
    def sites(self) -> set[str | None]:
        """The sites (`primary`, `standby`) whose declarations are among the resources."""
        return {d.get("site") for d in self.declarations}


def _seconds(text: Any, default: float) -> float:
    """'120s' (a Google duration) as seconds."""
    try:
        return float(str(text).rstrip("s"))
    except ValueError:
        return default


def _uptime_alerts(resources: list[tuple[str, Mapping[str, Any]]]) -> list[UptimeAlert]:
    checks = {(props.get("userLabels") or {}).get(Label.TARGET): props
              for kind, props in resources if kind == ResourceType.UPTIME_CHECK}
    alerts = []
    for kind, props in resources:
        labels = props.get("userLabels") or {}
        if (kind != ResourceType.ALERT_POLICY or labels.get(Label.ALERT) != UPTIME.slug
                or labels.get(Label.SEVERITY) != UPTIME.severity.lower() or props.get("enabled") is False):
            continue
        check = checks.get(labels.get(Label.TARGET))
        if check is None:
            continue
        for condition in props.get("conditions") or []:
            threshold = condition.get("conditionThreshold") or {}
            alerts.append(UptimeAlert(
                str(labels.get(Label.TARGET)), _seconds(check.get("period"), 60.0), _seconds(check.get("timeout"), 0.0),
                # none selected: Cloud Monitoring probes from every region, the plan's at least
                len(check.get("selectedRegions") or []) or len(UPTIME_REGIONS), str(threshold.get("comparison", UPTIME.comparison)),
                float(threshold.get("thresholdValue") or 0), _seconds(threshold.get("duration"), 0.0)))
    return alerts


def facts(resources: Iterable[tuple[str, Mapping[str, Any]]]) -> Facts:
    """The facts of these resources."""
    found = Facts()
    resources = list(resources)
    buckets = {props.get("name"): props for kind, props in resources if kind == ResourceType.BUCKET}
    jobs = {props.get("name"): props for kind, props in resources if kind == ResourceType.RUN_JOB}
    for kind, props in resources:
        if kind == ResourceType.RECOVERY_OBJECTIVES:
            found.declarations.append(props)
        elif kind == ResourceType.SCHEDULER_JOB:
            job = jobs.get(started_job(lookup(props, "httpTarget.uri")))
            runs = (job or {}).get("labels") or {}
            if runs.get(Label.JOB_COMMAND) == Command.BACKUP and runs.get(Label.BACKUP_KIND) == BackupKind.FULL:
                cron = props.get("schedule", "")
                try:
                    minutes = max_interval_hours(cron) * 60
                except (ValueError, IndexError):  # a schedule this model cannot read bounds nothing
                    minutes = float("inf")
                found.full_backups.append((cron, minutes, bool(props.get("paused"))))
        elif kind == ResourceType.TRANSFER_JOB:
            spec = props.get("transferSpec") or props.get("replicationSpec") or {}
            sink = buckets.get(lookup(spec, "gcsDataSink.bucketName"), {})
            role = (sink.get("labels") or {}).get(Label.BACKUP_ROLE, "unknown")
            if "replicationSpec" in props:
                found.live_copies.add(role)
            else:
                found.daily_copies[role] = _seconds(lookup(props, "schedule.repeatInterval", "86400s"), 86400.0) / 60
        elif kind == ResourceType.DNS_RECORD:
            found.dns_ttls.append((int(props.get("ttl") or 1), bool(props.get("proxied"))))
        elif kind == ResourceType.LOAD_BALANCER_MONITOR:
            found.lb_monitors.append((float(props.get("interval") or 60), int(props.get("retries") or 0)))
        elif kind == ResourceType.VERCEL_VARIABLE:
            found.vercel_variables += 1
    found.uptime_alerts = _uptime_alerts(resources)
    return found
