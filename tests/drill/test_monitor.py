"""The monitor stand-in (tools/drill/monitor.py): the dr plan's uptime checks and alert policies, run against
small HTTP apps on 127.0.0.1 in this process (no root, no namespaces).

The plan is the repo's own dr plan, cut down to the checks, alert policies, failover records and DNS records
of two failover names (one with IP targets and a Host header, one with name targets); public names resolve
from the plan's own DNS records (tests/drill/monitor_world.py). Timings are asserted in wall seconds derived
from the plan's figures divided by the time scale, with slack for a loaded machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.contracts import ResourceType
from tests.drill.monitor_world import App, dr_fragment, inputs, plan_resolver, plan_seconds, severity, site_of_target
from tools.drill import checker, dns
from tools.drill.monitor import Monitor, Page
from tools.drill.uptime import UptimeCheck, UptimePolicy
from tools.drill.world import DrillError

SCALE = 120.0
"""Plan seconds per wall second. The checks' timeout divided by it is below the monitor's MIN_TIMEOUT_SECONDS, so
probes keep that floor (a loaded machine's healthy app still answers in time); periods and durations shrink."""
SLACK_SECONDS = 1.5
"""Wall seconds a loaded machine may add to a detection (thread wake-ups, a slow probe)."""


@pytest.fixture
def fragment(make_plan) -> dict[str, Any]:
    """A fresh copy of the cut-down dr plan (tests may mutate it)."""
    return dr_fragment(make_plan("dr").to_json())


@pytest.fixture
def apps() -> Iterator[dict[str, App]]:
    """The US and EU apps, healthy."""
    found = {"us": App(), "eu": App()}
    yield found
    for app in found.values():
        app.close()


@pytest.fixture
def start(fragment, apps) -> Iterator[Callable[..., Monitor]]:
    """Start a monitor of the fragment against the apps; every monitor started is stopped afterwards."""
    started: list[Monitor] = []

    def make(**options: Any) -> Monitor:
        monitor = Monitor(fragment, SCALE, endpoints={site: app.address for site, app in apps.items()},
                          namespace=None, resolve=plan_resolver(fragment), **options)
        started.append(monitor.start())
        return monitor

    yield make
    for monitor in started:
        monitor.stop()


def _worst_wall(monitor: Monitor, policy: UptimePolicy, plan: dict[str, Any]) -> float:
    """The longest a detection may take on the wall, from the plan's figures: the next probe, its timeout (the
    monitor's, which has a floor), the duration."""
    period, _, duration = plan_seconds(plan, policy)
    return period / SCALE + monitor.timeout(policy.check) + duration / SCALE


def _longest(monitor: Monitor) -> float:
    """The longest any policy may take to page, on the wall (the monitor's own scaled figures)."""
    return max(monitor.period(p.check) + monitor.timeout(p.check) + monitor.retest_window(p) for p in monitor.policies)


def _wait_pages(
    monitor: Monitor, severity: str, since: float, count: int, timeout: float, policy: str | None = None
) -> list[Page]:
    """The pages of one severity (and, if named, one policy) fired since a moment, once `count` are in."""

    def found() -> list[Page]:
        return [
            p
            for p in monitor.pages
            if p.severity == severity and p.fired_at >= since and policy in (None, p.policy)
        ]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(found()) >= count:
            break
        time.sleep(0.05)
    return found()


def test_healthy_targets_never_page_and_every_region_probes_every_check(start, fragment, apps):
    monitor = start()
    time.sleep(_longest(monitor) * 1.5)
    assert monitor.pages == [], f"a healthy world paged: {monitor.pages}"
    probes = monitor.probes
    for check in monitor.checks.values():
        for region in check.regions:
            mine = [p for p in probes if p.check == check.name and p.region == region]
            assert len(mine) >= 2, f"{check.name} from {region} probed {len(mine)} times"
    # A loaded machine may make a probe miss its timeout; any other failure of a healthy app is the monitor's.
    failed = [p for p in probes if not p.passed and p.detail != "timeout"]
    assert not failed, f"healthy apps failed probes: {failed[:3]}"


def test_probes_send_each_checks_method_path_and_host_header(start, fragment, apps):
    monitor = start()
    assert monitor.wait_passing("p0", timeout=_longest(monitor)), "the primary targets never all passed"
    expected = set()
    for check in inputs(fragment, ResourceType.UPTIME_CHECK):
        http = check["httpCheck"]
        host = (http.get("headers") or {}).get("Host", check["monitoredResource"]["labels"]["host"])
        expected.add((http["requestMethod"], http["path"], host))
    seen = set(apps["us"].requests) | set(apps["eu"].requests)
    assert seen == expected


def test_a_primary_answering_503_pages_p0_for_its_targets_after_a_probe_and_the_duration(start, fragment, apps):
    monitor = start()
    assert monitor.wait_passing("p0", timeout=_longest(monitor))
    us_targets = {target for target, site in site_of_target(fragment).items() if site == "us"}
    cut = time.monotonic()
    apps["us"].status = 503
    pages = _wait_pages(monitor, "p0", cut, len(us_targets), _longest(monitor) + SLACK_SECONDS)
    assert {p.target for p in pages} == us_targets, "not every target leading to the US paged (its names, its IP, the public names)"
    for page in pages:
        policy = monitor.policy(page.policy)
        assert page.severity == severity(fragment, page.target), page
        elapsed, duration = page.fired_at - cut, plan_seconds(fragment, page)[2] / SCALE
        assert duration <= elapsed <= _worst_wall(monitor, policy, fragment) + SLACK_SECONDS, \
            f"{page.policy} paged {elapsed:.2f} s after the 503s began"
        assert page.fired_at - page.first_failure >= duration - 0.05, page
        assert page.failing_regions >= policy.regions_needed, page


def test_an_open_incident_pages_once_and_a_new_one_pages_again(start, fragment, apps):
    monitor = start()
    assert monitor.wait_passing("p0", timeout=_longest(monitor))
    apps["us"].status = 503
    first = _wait_pages(monitor, "p0", 0.0, 1, _longest(monitor) + SLACK_SECONDS)
    assert first, "no page for a failing primary"
    policy = monitor.policy(first[0].policy)
    time.sleep(monitor.period(policy.check) * 3)
    assert [p.policy for p in monitor.pages].count(policy.name) == 1, "an open incident paged twice"
    apps["us"].status = 200
    assert monitor.wait_passing("p0", timeout=_longest(monitor))
    again = time.monotonic()
    apps["us"].status = 503
    assert monitor.wait_page("p0", since=again, timeout=_longest(monitor) + SLACK_SECONDS) is not None
    # Each policy pages on its own clock: wait for this policy's own second page, not for a total count.
    assert len(_wait_pages(monitor, "p0", 0.0, 2, _longest(monitor) + SLACK_SECONDS, policy=policy.name)) == 2


def test_a_primary_that_stops_answering_pages_once_probes_time_out(start, fragment, apps):
    monitor = start()
    assert monitor.wait_passing("p0", timeout=_longest(monitor))
    cut = time.monotonic()
    apps["us"].silent.set()
    page = monitor.wait_page("p0", since=cut, timeout=_longest(monitor) + SLACK_SECONDS)
    assert page is not None, "no page for a primary that stopped answering"
    policy = monitor.policy(page.policy)
    assert plan_seconds(fragment, page)[2] / SCALE <= page.fired_at - cut <= _worst_wall(monitor, policy, fragment) + SLACK_SECONDS
    timed_out = [p for p in monitor.probes if p.check == policy.check.name and p.started >= cut and not p.passed]
    assert timed_out and all(p.detail == "timeout" for p in timed_out), timed_out[:3]
    assert all(p.finished - p.started >= monitor.timeout(policy.check) - 0.05 for p in timed_out), timed_out[:3]


def test_a_failing_standby_pages_at_the_plans_standby_severity_never_p0(start, fragment, apps):
    monitor = start()
    eu_targets = {target for target, site in site_of_target(fragment).items() if site == "eu"}
    apps["eu"].status = 503
    pages = _wait_pages(monitor, severity(fragment, min(eu_targets)), 0.0, len(eu_targets),
                        _longest(monitor) + SLACK_SECONDS)
    assert {p.target for p in pages} == eu_targets
    assert all(p.severity == severity(fragment, p.target) != "p0" for p in pages), pages
    assert monitor.wait_page("p0", timeout=0.5) is None, f"a standby failure paged p0: {monitor.pages}"


def test_expected_detection_is_the_plans_period_timeout_and_duration(start, fragment, apps):
    monitor = start()
    apps["us"].status = 503
    page = monitor.wait_page("p0", timeout=_longest(monitor) + SLACK_SECONDS)
    assert page is not None
    period, timeout, duration = plan_seconds(fragment, page)
    assert monitor.expected_detect_seconds(page) == period + timeout + duration
    assert monitor.expected_detect(page).endswith(f"= {period + timeout + duration:g} s")


def test_a_longer_duration_fault_makes_the_page_later_than_the_plan_implies(start, fragment, apps):
    monitor = start(duration_factor=3.0)
    assert monitor.wait_passing("p0", timeout=_longest(monitor))
    cut = time.monotonic()
    apps["us"].status = 503
    page = monitor.wait_page("p0", since=cut, timeout=_longest(monitor) + SLACK_SECONDS)
    assert page is not None
    period, timeout, duration = plan_seconds(fragment, page)
    assert page.fired_at - cut > (period + timeout + duration) / SCALE, \
        "the fault knob did not delay the page past what the plan implies"
    assert monitor.expected_detect_seconds(page) == period + timeout + duration, "the fault knob leaked into the plan's figure"


def test_stop_ends_every_thread_within_a_second_even_with_a_probe_in_flight(start, fragment, apps):
    apps["us"].silent.set()
    monitor = start()
    time.sleep(monitor.period(next(iter(monitor.checks.values()))) * 1.5)
    began = time.monotonic()
    monitor.stop()
    assert time.monotonic() - began <= 1.1
    assert monitor.running == [], monitor.running


def _first_uptime_alert(plan: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in inputs(plan, ResourceType.ALERT_POLICY) if p["conditions"][0].get("conditionThreshold"))


@pytest.mark.parametrize(("field", "value", "named"), [
    ("crossSeriesReducer", "REDUCE_MEAN", "REDUCE_MEAN"),
    ("perSeriesAligner", "ALIGN_MEAN", "ALIGN_MEAN"),
    ("comparison", "COMPARISON_EQ", "COMPARISON_EQ"),
])
def test_an_unsupported_condition_is_refused_naming_the_policy(fragment, field, value, named):
    alert = _first_uptime_alert(fragment)
    threshold = alert["conditions"][0]["conditionThreshold"]
    (threshold if field == "comparison" else threshold["aggregations"][0])[field] = value
    with pytest.raises(DrillError) as raised:
        Monitor(fragment, SCALE, namespace=None)
    assert alert["displayName"] in str(raised.value) and named in str(raised.value)


def test_a_threshold_no_count_of_regions_can_pass_is_refused(fragment):
    alert = _first_uptime_alert(fragment)
    alert["conditions"][0]["conditionThreshold"]["thresholdValue"] = 99.0
    with pytest.raises(DrillError, match="never holds") as raised:
        Monitor(fragment, SCALE, namespace=None)
    assert alert["displayName"] in str(raised.value)


def test_a_public_name_without_a_dns_answer_is_a_failed_probe(fragment):
    monitor = Monitor(fragment, SCALE, namespace=None)
    public = {r["fqdn"] for r in inputs(fragment, ResourceType.FAILOVER_RECORD)}
    check = next(c for c in monitor.checks.values() if c.host in public)
    found = checker.endpoint(check, monitor.sites, monitor.endpoints, checker.Resolver(lambda name: dns.Answer((), None), SCALE))
    assert checker.probe(check, check.regions[0], found, 0.5).detail == "no DNS answer"


def test_accepted_status_classes_pass_any_code_of_the_class():
    check = UptimeCheck("c", "t", "h", "/", "GET", "h", ("STATUS_CLASS_2XX", "301"), 60.0, 10.0, ("USA",))
    assert [check.accepts(code) for code in (200, 204, 301, 302, 503)] == [True, True, True, False, False]
