"""What the monitor stand-in (tools/drill/monitor.py) reads from a plan: its uptime checks and the alert
policies that watch them, with every figure the plan gives and nothing else.

An uptime check is a `gcp:monitoring/uptimeCheckConfig` resource: its host, path, method, headers,
accepted status codes, period, timeout and checker regions. An uptime alert policy is an alert policy whose
one condition is a threshold on the uptime checks' `check_passed` metric; it watches the check with the same
`raptorflow-target` label. Its condition is evaluated as Cloud Monitoring documents it
(https://cloud.google.com/monitoring/alerts/concepts-indepth): per checker region the newest point within
the alignment period (ALIGN_NEXT_OLDER), the regions whose point is false counted (REDUCE_COUNT_FALSE), the
count compared with the threshold, and the comparison held for the retest window (`duration`) before an
incident opens. A policy that asks anything else (another aligner, reducer or comparison, several
conditions) is refused with its name: the stand-in never guesses what Cloud Monitoring would do.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.contracts import Label, ResourceType
from tools.drill import plans
from tools.drill.world import USAGE, DrillError

UPTIME_METRIC = "monitoring.googleapis.com/uptime_check/check_passed"
"""The metric an uptime check writes once per probe and region: true when the probe passed."""
ALIGNER = "ALIGN_NEXT_OLDER"
REDUCER = "REDUCE_COUNT_FALSE"
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "COMPARISON_GT": operator.gt, "COMPARISON_GE": operator.ge,
    "COMPARISON_LT": operator.lt, "COMPARISON_LE": operator.le,
}
PROBES_PER_REGION = 1
"""Failed probes a failing region needs before the condition counts it: ALIGN_NEXT_OLDER takes the region's
newest point, so one."""
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
_STATUS_CLASS = re.compile(r"^STATUS_CLASS_([1-5])XX$")
STATUS_CLASS_ANY = "STATUS_CLASS_ANY"


def seconds(value: object, where: str) -> float:
    """A protobuf duration as the plan writes it (`"60s"`) in seconds; DrillError(USAGE) naming `where`."""
    found = _DURATION.match(str(value))
    if not found:
        raise DrillError(USAGE, f"{where}: {value!r} is not a duration in seconds such as '60s'")
    return float(found[1])


@dataclass(frozen=True)
class UptimeCheck:
    """One uptime check of the plan."""

    name: str
    """The check's resource name (`monitoring-check-api-primary`)."""
    target: str
    """Its `raptorflow-target` label: what it watches."""
    host: str
    """The monitored host: a failover target's name or IP, or a public name."""
    path: str
    method: str
    host_header: str
    """The Host header the probe sends (the plan's `headers.Host`, else the host)."""
    accepted: tuple[str, ...]
    """Accepted status codes: `"200"`-style values and `STATUS_CLASS_2XX`-style classes."""
    period_seconds: float
    timeout_seconds: float
    regions: tuple[str, ...]

    def accepts(self, status: int) -> bool:
        """Whether a response with `status` passes (Cloud Monitoring's default, no codes listed: any 2xx)."""
        if not self.accepted:
            return 200 <= status < 300
        for code in self.accepted:
            found = _STATUS_CLASS.match(code)
            if code == STATUS_CLASS_ANY or code == str(status) or (found and status // 100 == int(found[1])):
                return True
        return False


def _accepted(codes: list[dict[str, Any]], name: str) -> tuple[str, ...]:
    accepted = []
    for code in codes:
        if code.get("statusValue") is not None:
            accepted.append(str(int(code["statusValue"])))
        elif code.get("statusClass") == STATUS_CLASS_ANY or _STATUS_CLASS.match(str(code.get("statusClass"))):
            accepted.append(str(code["statusClass"]))
        else:
            raise DrillError(USAGE, f"uptime check {name}: accepted status code {code} is neither a value nor a class")
    return tuple(accepted)


def uptime_checks(plan: dict[str, Any]) -> dict[str, UptimeCheck]:
    """The plan's HTTP uptime checks by their target label; DrillError(USAGE) for one the stand-in cannot run."""
    checks: dict[str, UptimeCheck] = {}
    for resource in plans.resources(plan, ResourceType.UPTIME_CHECK):
        inputs, name = resource["inputs"], resource["name"]
        http = inputs.get("httpCheck")
        target = (inputs.get("userLabels") or {}).get(Label.TARGET.value)
        if not http or not target:
            raise DrillError(USAGE, f"uptime check {name}: the monitor stand-in runs HTTP checks with a "
                                    f"{Label.TARGET.value} label; it has {'no label' if http else 'no httpCheck'}")
        host = inputs["monitoredResource"]["labels"]["host"]
        period = seconds(inputs.get("period"), f"uptime check {name} period")
        timeout = seconds(inputs.get("timeout"), f"uptime check {name} timeout")
        regions = tuple(inputs.get("selectedRegions") or ())
        if not regions:
            raise DrillError(USAGE, f"uptime check {name}: no selectedRegions (the stand-in probes from the listed ones)")
        checks[target] = UptimeCheck(
            name, target, host, http.get("path", "/"), http.get("requestMethod", "GET"),
            (http.get("headers") or {}).get("Host", host), _accepted(http.get("acceptedResponseStatusCodes") or [], name),
            period, timeout, regions)
    return checks


@dataclass(frozen=True)
class UptimePolicy:
    """One uptime alert policy of the plan: which check it watches and when it opens an incident."""

    name: str
    """The policy's displayName (what a page shows)."""
    severity: str
    """Its `severity` label (`p0`, `p2`...)."""
    check: UptimeCheck
    comparison: str
    threshold: float
    duration_seconds: float
    """The retest window: how long the comparison must hold before an incident opens."""
    alignment_seconds: float
    regions_needed: int
    """The fewest failing regions for which the comparison holds."""

    def holds(self, failing_regions: int) -> bool:
        """Whether the condition's comparison holds for this count of failing regions."""
        return COMPARISONS[self.comparison](failing_regions, self.threshold)

    @property
    def target(self) -> str:
        """What it watches (the check's `raptorflow-target`)."""
        return self.check.target


def _refuse(policy: str, what: str) -> DrillError:
    return DrillError(USAGE, f"alert policy {policy!r}: {what}; the monitor stand-in evaluates only one threshold "
                             f"condition on {UPTIME_METRIC} aligned with {ALIGNER}, reduced with {REDUCER} and compared "
                             f"with {' / '.join(COMPARISONS)}")


def _watches_uptime(inputs: dict[str, Any]) -> bool:
    return any(UPTIME_METRIC in str((c.get("conditionThreshold") or {}).get("filter", ""))
               for c in inputs.get("conditions") or [])


def uptime_policies(plan: dict[str, Any], checks: dict[str, UptimeCheck]) -> list[UptimePolicy]:
    """The plan's alert policies on uptime checks; DrillError(USAGE) naming a policy the stand-in cannot evaluate."""
    found = []
    for resource in plans.resources(plan, ResourceType.ALERT_POLICY):
        inputs = resource["inputs"]
        if not _watches_uptime(inputs):
            continue
        name = inputs.get("displayName") or resource["name"]
        conditions = inputs["conditions"]
        if len(conditions) != 1:
            raise _refuse(name, f"it has {len(conditions)} conditions")
        threshold = conditions[0]["conditionThreshold"]
        aggregations = threshold.get("aggregations") or [{}]
        aggregation = aggregations[0]
        if len(aggregations) != 1 or aggregation.get("perSeriesAligner") != ALIGNER \
                or aggregation.get("crossSeriesReducer") != REDUCER:
            raise _refuse(name, "its aggregation is " + ", ".join(
                f"{a.get('perSeriesAligner')} / {a.get('crossSeriesReducer')}" for a in aggregations))
        comparison = threshold.get("comparison")
        if comparison not in COMPARISONS:
            raise _refuse(name, f"its comparison is {comparison}")
        labels = inputs.get("userLabels") or {}
        check = checks.get(labels.get(Label.TARGET.value, ""))
        if check is None or Label.SEVERITY.value not in labels:
            raise DrillError(USAGE, f"alert policy {name!r}: no {Label.SEVERITY.value} label or no uptime check with its "
                                    f"{Label.TARGET.value} label ({labels.get(Label.TARGET.value)})")
        value = float(threshold.get("thresholdValue", 0))
        holding = [n for n in range(len(check.regions) + 1) if COMPARISONS[comparison](n, value)]
        if not holding or holding[0] == 0:
            raise DrillError(USAGE, f"alert policy {name!r}: {comparison} {value:g} over {len(check.regions)} regions "
                                    + ("never holds" if not holding else "holds while every region passes"))
        found.append(UptimePolicy(
            name, labels[Label.SEVERITY.value], check, comparison, value,
            seconds(threshold.get("duration"), f"alert policy {name!r} duration"),
            seconds(aggregation.get("alignmentPeriod"), f"alert policy {name!r} alignmentPeriod"),
            holding[0]))
    return found


@dataclass(frozen=True)
class Expectation:
    """How long an uptime alert needs, at worst, from the moment its target stops answering, in plan seconds."""

    period_seconds: float
    """The wait for the failing regions' next probe: each region probes once per period."""
    probes_needed: int
    """Failed probes each failing region needs (PROBES_PER_REGION)."""
    timeout_seconds: float
    """A target that stops answering fails a probe only when the probe's timeout passes."""
    duration_seconds: float
    """The retest window the condition must hold for."""

    @property
    def seconds(self) -> float:
        """period x probes needed + timeout + duration."""
        return self.period_seconds * self.probes_needed + self.timeout_seconds + self.duration_seconds

    def derivation(self) -> str:
        """The sum, as a report states it."""
        return (f"period {self.period_seconds:g} s x {self.probes_needed} failed probe(s) + timeout "
                f"{self.timeout_seconds:g} s + duration {self.duration_seconds:g} s = {self.seconds:g} s")


def expectation(policy: UptimePolicy) -> Expectation:
    """What the plan's own settings imply for `policy`: its check's period and timeout, its duration."""
    return Expectation(policy.check.period_seconds, PROBES_PER_REGION, policy.check.timeout_seconds,
                       policy.duration_seconds)
