"""The recovery model's terms on the recorded plans: which apply to each scenario, how the RTO is composed from
them, and the detect term read off the dr plan's own uptime checks and P0 uptime alerts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.alerts import CATALOG
from core.contracts import Label, ResourceType
from core.recovery_estimates import PARALLEL, TERMS, Assessment
from core.recovery_model import RECOVERY, assess
from tools.offline import Plan, unwrap

UPTIME = CATALOG["uptime"]


def _resources(*plans: Plan) -> list[tuple[str, dict[str, Any]]]:
    return [(r.type, copy.deepcopy(unwrap(r.inputs))) for plan in plans for r in plan.resources]


def _assessed(resources: list[tuple[str, dict[str, Any]]]) -> dict[str, Assessment]:
    return {a.scenario: a for a in assess(resources)}


def _p0_uptime_alerts(resources: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [props for kind, props in resources if kind == ResourceType.ALERT_POLICY
            and props["userLabels"][Label.ALERT] == UPTIME.slug
            and props["userLabels"][Label.SEVERITY] == UPTIME.severity.lower()]


def _minutes(assessment: Assessment, name: str) -> float:
    term = assessment.term(name)
    assert term is not None and term.minutes is not None, f"{assessment.scenario} has a bounded {name} term"
    return term.minutes


def _seconds(text: str) -> float:
    return float(text.rstrip("s"))


def test_each_scenario_has_the_terms_that_apply_in_the_operators_order(prod_plan: Plan, dr_plan: Plan):
    report = _assessed(_resources(prod_plan, dr_plan))
    names = {scenario: [term.name for term in a.terms] for scenario, a in report.items()}
    assert names == {
        "databaseCorruption": ["decide", "restore"],
        "regionalOutage": ["detect", "decide", "restore", "apply", "propagate", "redeploy"],
        "failback": ["restore", "apply", "propagate", "redeploy"],
        "securityBreach": ["decide", "apply", "redeploy"],
        "dataDeletion": ["decide", "restore"],
    }, "the terms of each scenario, in the order operators live them"
    assert all(term.name in TERMS for a in report.values() for term in a.terms)


def test_the_rto_is_composed_from_the_terms(prod_plan: Plan, dr_plan: Plan):
    for assessment in _assessed(_resources(prod_plan, dr_plan)).values():
        minutes = {term.name: _minutes(assessment, term.name) for term in assessment.terms}
        in_sequence = sum(m for name, m in minutes.items() if name not in PARALLEL)
        side_by_side = max((m for name, m in minutes.items() if name in PARALLEL), default=0)
        assert assessment.rto.minutes == pytest.approx(in_sequence + side_by_side), assessment.scenario
        assert assessment.to_json()["terms"] == [
            {"term": t.name, "minutes": t.minutes, "derivation": t.derivation} for t in assessment.terms]


def test_detect_is_the_p0_uptime_alerts_period_timeout_and_duration(dr_plan: Plan):
    resources = _resources(dr_plan)
    alerts = _p0_uptime_alerts(resources)
    assert alerts, "the dr plan has P0 uptime alerts"
    check = next(props for kind, props in resources if kind == ResourceType.UPTIME_CHECK)
    condition = alerts[0]["conditions"][0]["conditionThreshold"]
    period, timeout, duration = _seconds(check["period"]), _seconds(check["timeout"]), _seconds(condition["duration"])
    regions = int(condition["thresholdValue"]) + 1  # COMPARISON_GT: more failing regions than the threshold
    detect = _assessed(resources)["regionalOutage"].term("detect")
    assert detect is not None and detect.minutes == pytest.approx((period + timeout + duration) / 60)
    assert (f"{regions} of {len(check['selectedRegions'])} regions failing): check period {period:g} s + timeout "
            f"{timeout:g} s + duration {duration:g} s") in detect.derivation


def test_a_longer_check_timeout_gives_a_longer_detect_term(dr_plan: Plan):
    resources = _resources(dr_plan)
    before = _minutes(_assessed(resources)["regionalOutage"], "detect")
    for kind, props in resources:
        if kind == ResourceType.UPTIME_CHECK:
            props["timeout"] = f"{_seconds(props['timeout']) + 30:g}s"
    assert _minutes(_assessed(resources)["regionalOutage"], "detect") == pytest.approx(before + 0.5)


def test_a_longer_alert_duration_gives_a_longer_detect_term(dr_plan: Plan):
    resources = _resources(dr_plan)
    before = _assessed(resources)["regionalOutage"]
    for alert in _p0_uptime_alerts(resources):
        threshold = alert["conditions"][0]["conditionThreshold"]
        threshold["duration"] = f"{_seconds(threshold['duration']) + 600:g}s"
    after = _assessed(resources)["regionalOutage"]
    assert _minutes(after, "detect") == _minutes(before, "detect") + 10
    assert after.rto.minutes == pytest.approx(_minutes(before, "detect") + 10 + sum(
        _minutes(before, name) for name in ("decide", "restore", "apply"))
        + max(_minutes(before, "propagate"), _minutes(before, "redeploy")))


def test_no_uptime_check_leaves_detection_unbounded(dr_plan: Plan):
    resources = [(kind, props) for kind, props in _resources(dr_plan) if kind != ResourceType.UPTIME_CHECK]
    outage = _assessed(resources)["regionalOutage"]
    detect = outage.term("detect")
    assert detect is not None and detect.minutes is None
    assert "no P0 uptime alert on an uptime check: nobody is paged" in detect.derivation
    assert outage.rto.minutes is None and not outage.rto_met
    assert outage.binding.startswith("RTO: detect unbounded (no P0 uptime alert")


def test_an_alert_needing_more_failing_regions_than_probe_never_pages(dr_plan: Plan):
    resources = _resources(dr_plan)
    for alert in _p0_uptime_alerts(resources):
        alert["conditions"][0]["conditionThreshold"]["thresholdValue"] = 3  # more than 3 of 3 regions
    detect = _assessed(resources)["regionalOutage"].term("detect")
    assert detect is not None and detect.minutes is None
    assert "needs more failing regions than its check probes from" in detect.derivation


def test_p2_uptime_alerts_do_not_detect_the_outage(dr_plan: Plan):
    everything = _resources(dr_plan)
    p0 = [id(props) for props in _p0_uptime_alerts(everything)]
    resources = [(kind, props) for kind, props in everything if id(props) not in p0]
    assert any(kind == ResourceType.ALERT_POLICY and props["userLabels"][Label.ALERT] == UPTIME.slug
               for kind, props in resources), "the standby's P2 uptime alerts remain"
    detect = _assessed(resources)["regionalOutage"].term("detect")
    assert detect is not None and detect.minutes is None


def test_failback_is_planned_loses_nothing_and_borrows_the_regional_outage_rto(prod_plan: Plan, dr_plan: Plan):
    report = _assessed(_resources(prod_plan, dr_plan))
    failback, outage = report["failback"], report["regionalOutage"]
    assert failback.target_rto_minutes == outage.target_rto_minutes
    assert failback.target_rpo_minutes == 0 and failback.rpo is not None and failback.rpo.minutes == 0
    assert failback.term("detect") is None and failback.term("decide") is None, "a failback is planned"
    assert _minutes(failback, "restore") == _minutes(report["databaseCorruption"], "restore"), \
        "the rebuild is the database's size at the restore throughput"


def test_without_a_database_replica_there_is_no_failback_to_assess(prod_plan: Plan, dr_plan: Plan):
    resources = [(kind, {**props, "databaseReplica": {"enabled": False}} if kind == RECOVERY else props)
                 for kind, props in _resources(prod_plan, dr_plan)]
    assert "failback" not in _assessed(resources)
    assert "regionalOutage" in _assessed(resources)
