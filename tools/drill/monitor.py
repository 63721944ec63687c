"""STAND-IN for Cloud Monitoring: the plan's uptime checks probe the apps, and its uptime alert policies page.

Driven only by the plan (tools/drill/uptime.py reads it):

- Each uptime check probes its host from each of its `selectedRegions` every `period / time_scale` wall
  seconds, with its own path, method, Host header and accepted status codes, and its `timeout` divided by
  the scale (never below MIN_TIMEOUT_SECONDS, so a loaded machine's healthy app is not a failure, nor above
  the period). The drill's apps speak plain HTTP on one port: the check's `port` and `useSsl` map to that.
- A failover target's name or IP leads to its site's app; a public name is asked of the drill's DNS, as a
  client would (tools/drill/checker.py).
- Every region probes from rfdr-net: the world has one internet, so the regions differ only in when they
  probe (spread over the period: Cloud Monitoring does not synchronise its checkers), not in their path.
- Each uptime alert policy is evaluated at every probe and every EVALUATE_SECONDS: per region the newest
  point within the alignment period, the regions whose point failed counted and compared with the threshold.
  Once the comparison has held for `duration / time_scale` (the retest window) the incident opens and the
  policy pages: a Page with its severity label. The next Page of that policy needs the condition to stop
  holding first (the incident closes).

Each probe records (check, region, passed, wall time). The monitor prints nothing; its threads are daemons
that end within a second of `stop()` (a probe in flight then ends at its timeout and records nothing).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tools.drill import checker, dns, plans, workload
from tools.drill.checker import Probe, Resolver
from tools.drill.uptime import UptimeCheck, UptimePolicy, expectation, uptime_checks, uptime_policies
from tools.drill.world import ADDRESSES, MISSED, NAMESPACES, USAGE, DrillError, enter

MIN_TIMEOUT_SECONDS = 0.5
EVALUATE_SECONDS = 0.05
STOP_SECONDS = 1.0
MAX_SECONDS = 3_600.0
"""A monitor nobody stops ends after this long."""
MAX_PROBES = 100_000
"""Probes kept for the record (the newest of each region is always kept for evaluation)."""
SITES = ("us", "eu")


@dataclass(frozen=True)
class Page:
    """An incident an uptime alert policy opened: what an on-call engineer would be paged with."""

    policy: str
    """The policy's displayName."""
    severity: str
    """Its severity label (`p0`...)."""
    target: str
    """What it watches (its `raptorflow-target` label)."""
    fired_at: float
    """time.monotonic() when the retest window ended."""
    fired_at_utc: datetime
    first_failure: float
    """time.monotonic() when the first failing probe of the incident was sent."""
    failing_regions: int

    def to_json(self) -> dict[str, Any]:
        """For a drill record."""
        return {"policy": self.policy, "severity": self.severity, "target": self.target,
                "firedAt": self.fired_at_utc.isoformat(timespec="milliseconds"),
                "firstFailureToPageSeconds": round(self.fired_at - self.first_failure, 3),
                "failingRegions": self.failing_regions}


@dataclass
class _Incident:
    """A policy's condition: since when it holds (None: it does not), and whether this incident paged."""

    held_since: float | None = None
    paged: bool = False


FAULT_VARIABLE = "RFDR_MONITOR_FAULT_DURATION_FACTOR"
"""FOR TESTS: in the drill's environment, a number > 0 that multiplies every alert's retest window (the monitor
pages later than the plan says; the drill's report must then name the detect term)."""


def fault_duration_factor(environ: Mapping[str, str] = os.environ) -> float:
    """The retest-window factor FAULT_VARIABLE asks for (1 when unset); DrillError(USAGE) unless a number > 0."""
    text = environ.get(FAULT_VARIABLE, "1")
    try:
        factor = float(text)
    except ValueError:
        factor = 0.0
    if not factor > 0 or factor == float("inf"):
        raise DrillError(USAGE, f"{FAULT_VARIABLE}={text!r} is not a number > 0")
    return factor


class Monitor:
    """The plan's uptime checks and alert policies, run against the drill's apps.

    `endpoints` maps each site to its app's (address, port) (default: the sites' addresses and the apps'
    port); `namespace` is where the checkers run (default rfdr-net; None: this process's own network);
    `resolve` answers a DNS query (default: the drill's DNS server).
    """

    def __init__(self, plan: dict[str, Any], time_scale: float, *,
                 endpoints: Mapping[str, tuple[str, int]] | None = None, namespace: str | None = "net",
                 resolve: Callable[[str], dns.Answer] = dns.query, duration_factor: float = 1.0,
                 max_seconds: float = MAX_SECONDS) -> None:
        if time_scale <= 0 or duration_factor <= 0:
            raise DrillError(USAGE, "the monitor's time scale and duration factor must be positive")
        self.checks = uptime_checks(plan)
        self.policies = uptime_policies(plan, self.checks)
        self.time_scale = time_scale
        # FAULT KNOB, for tests only: the retest window held before paging is the plan's duration times this,
        # so a test can make detection slower than the plan says (the report must then name the detect term).
        self.duration_factor = duration_factor
        self.sites = plans.failover_targets(plan)
        self.endpoints = dict(endpoints) if endpoints is not None else {
            site: (ADDRESSES[site], workload.APP_PORT) for site in SITES}
        self.namespace, self.resolve, self.max_seconds = namespace, resolve, max_seconds
        self._probes: list[Probe] = []
        self._pages: list[Page] = []
        self._newest: dict[tuple[str, str], Probe] = {}
        self._failing_since: dict[tuple[str, str], float] = {}
        self._incidents = {policy.name: _Incident() for policy in self.policies}
        self._changed = threading.Condition()
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []
        self._errors: list[str] = []

    # ------------------------------------------------------------------ the scaled clock

    def period(self, check: UptimeCheck) -> float:
        """The check's period in wall seconds."""
        return check.period_seconds / self.time_scale

    def timeout(self, check: UptimeCheck) -> float:
        """The check's timeout in wall seconds (floored at MIN_TIMEOUT_SECONDS, capped at the period)."""
        return min(max(check.timeout_seconds / self.time_scale, MIN_TIMEOUT_SECONDS), self.period(check))

    def retest_window(self, policy: UptimePolicy) -> float:
        """How long, in wall seconds, the policy's condition must hold before it pages."""
        return policy.duration_seconds / self.time_scale * self.duration_factor

    # ------------------------------------------------------------------ running

    def start(self) -> Monitor:
        """Start one checker per check and region, and the evaluator."""
        if self.namespace is not None and not Path(f"/run/netns/{NAMESPACES[self.namespace]}").exists():
            raise DrillError(USAGE, f"the monitor's checkers run in {NAMESPACES[self.namespace]}, which does not exist")
        started = time.monotonic()
        for check in self.checks.values():
            for index, region in enumerate(check.regions):
                offset = self.period(check) * index / len(check.regions)
                self._threads.append(threading.Thread(target=self._guarded, args=(self._checker, check, region,
                                                      started + offset), name=f"rfdr-monitor-{check.target}-{region}",
                                                      daemon=True))
        self._threads.append(threading.Thread(target=self._guarded, args=(self._evaluator,), daemon=True,
                                              name="rfdr-monitor-evaluate"))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop every checker and the evaluator; returns within STOP_SECONDS."""
        self._halt.set()
        deadline = time.monotonic() + STOP_SECONDS
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def running(self) -> list[str]:
        """Names of the monitor's threads still alive."""
        return [thread.name for thread in self._threads if thread.is_alive()]

    def _guarded(self, body: Callable[..., None], *args: Any) -> None:
        try:
            if self.namespace is not None:
                enter(self.namespace)
            body(*args)
        except Exception as exc:  # noqa: BLE001 - a checker's failure is reported by wait_page, not lost
            with self._changed:
                self._errors.append(f"{threading.current_thread().name}: {type(exc).__name__}: {exc}")
                self._changed.notify_all()

    def _checker(self, check: UptimeCheck, region: str, first: float) -> None:
        resolver = Resolver(self.resolve, self.time_scale)
        due, period, ends = first, self.period(check), first + self.max_seconds
        while not self._halt.wait(max(0.0, due - time.monotonic())) and time.monotonic() < ends:
            probe = checker.probe(check, region, checker.endpoint(check, self.sites, self.endpoints, resolver),
                                  self.timeout(check))
            if not self._halt.is_set():
                self._record(probe)
            due += period
            while due < time.monotonic():  # a probe that overran skips the slots it missed
                due += period

    def _evaluator(self) -> None:
        ends = time.monotonic() + self.max_seconds
        while not self._halt.wait(EVALUATE_SECONDS) and time.monotonic() < ends:
            with self._changed:
                for policy in self.policies:
                    self._evaluate(policy, time.monotonic())

    # ------------------------------------------------------------------ the alert conditions

    def _record(self, probe: Probe) -> None:
        key = (probe.check, probe.region)
        with self._changed:
            if len(self._probes) < MAX_PROBES:
                self._probes.append(probe)
            self._newest[key] = probe
            if probe.passed:
                self._failing_since.pop(key, None)
            else:
                self._failing_since.setdefault(key, probe.started)
            for policy in self.policies:
                if policy.check.name == probe.check:
                    self._evaluate(policy, probe.finished)
            self._changed.notify_all()

    def _failing(self, policy: UptimePolicy, now: float) -> list[tuple[str, str]]:
        """The check's regions whose newest point within the alignment period failed (ALIGN_NEXT_OLDER,
        REDUCE_COUNT_FALSE)."""
        window = policy.alignment_seconds / self.time_scale
        keys = [(policy.check.name, region) for region in policy.check.regions]
        return [key for key in keys if (point := self._newest.get(key)) is not None
                and now - window <= point.finished <= now and not point.passed]

    def _evaluate(self, policy: UptimePolicy, now: float) -> None:
        """Called with the lock held: update the policy's incident at `now`; page when the window has passed."""
        incident = self._incidents[policy.name]
        failing = self._failing(policy, now)
        if not policy.holds(len(failing)):
            incident.held_since, incident.paged = None, False
            return
        if incident.held_since is None:
            incident.held_since = now
        if not incident.paged and now - incident.held_since >= self.retest_window(policy):
            incident.paged = True
            first = min(self._failing_since.get(key, now) for key in failing)
            self._pages.append(Page(policy.name, policy.severity, policy.target, time.monotonic(), datetime.now(UTC),
                                    first, len(failing)))
            self._changed.notify_all()

    # ------------------------------------------------------------------ what the scenario reads

    @property
    def probes(self) -> list[Probe]:
        """Every probe so far (up to MAX_PROBES), in the order they ended."""
        with self._changed:
            return list(self._probes)

    @property
    def pages(self) -> list[Page]:
        """Every page so far, in the order they fired."""
        with self._changed:
            return list(self._pages)

    def wait_page(self, severity: str = "p0", since: float | None = None, timeout: float = 60.0) -> Page | None:
        """The first page of `severity` fired at or after `since` (time.monotonic()), waiting up to `timeout`
        wall seconds; None if none fired. DrillError(MISSED) if a checker failed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if self._errors:
                    raise DrillError(MISSED, f"the monitor stand-in failed: {self._errors[0]}")
                page = next((p for p in self._pages if p.severity == severity
                             and (since is None or p.fired_at >= since)), None)
                left = deadline - time.monotonic()
                if page is not None or left <= 0:
                    return page
                self._changed.wait(left)

    def wait_passing(self, severity: str = "p0", timeout: float = 60.0) -> bool:
        """Wait until the newest probe of every region passes for every check a `severity` policy watches
        (a baseline before breaking anything); whether it did within `timeout` wall seconds."""
        keys = [(p.check.name, region) for p in self.policies if p.severity == severity for region in p.check.regions]
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all((probe := self._newest.get(key)) is not None and probe.passed for key in keys):
                left = deadline - time.monotonic()
                if left <= 0 or self._errors:
                    return False
                self._changed.wait(left)
            return True

    def policy(self, name: str) -> UptimePolicy:
        """The uptime alert policy with this displayName."""
        return next(policy for policy in self.policies if policy.name == name)

    def expected_detect_seconds(self, page: Page | None = None, severity: str = "p0") -> float:
        """What the plan's own settings imply, in plan seconds, for the policy that paged (or, with no page, the
        slowest policy of `severity`): period x failed probes needed + timeout + duration (uptime.Expectation).
        The fault knob is not in it: the plan's figures are what a measurement is compared with."""
        chosen = [self.policy(page.policy)] if page else [p for p in self.policies if p.severity == severity]
        if not chosen:
            raise DrillError(USAGE, f"the plan has no uptime alert policy of severity {severity}")
        return max(expectation(policy).seconds for policy in chosen)

    def expected_detect(self, page: Page) -> str:
        """The sum behind expected_detect_seconds for the policy that paged, as a report states it."""
        return expectation(self.policy(page.policy)).derivation()
