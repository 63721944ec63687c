"""The alert catalog is the one source of every alert's severity, meaning, steps and figures: each alert in both
plans comes from an entry, its page carries the entry's text, and the runbook is generated from the same entries."""

from __future__ import annotations

import dataclasses
import re

import pytest

from core.alerts import CATALOG, SEVERITIES, runbook
from tools.config_reference import RUNBOOK_PATH
from tools.offline import plan_stack

ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"


def test_the_committed_runbook_is_the_catalog():
    assert RUNBOOK_PATH.read_text() == runbook(), "run `python -m tools.config_reference` and commit the runbook"


def test_every_entry_has_its_runbook_section_and_a_known_severity():
    anchors = set(re.findall(r"^## (\S+)$", RUNBOOK_PATH.read_text(), flags=re.M))
    assert anchors == set(CATALOG), "one runbook section per catalog entry, headed by its slug (the anchor)"
    for kind in CATALOG.values():
        assert {kind.severity, kind.standby_severity} - {None} <= set(SEVERITIES)
        assert len(kind.steps) >= 2, f"{kind.slug}: a page needs first steps"


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_every_alert_in_the_plan_carries_its_entry_text_and_runbook_link(make_plan, stack):
    alerts = make_plan(stack).of_type(ALERT)
    assert alerts
    for alert in alerts:
        labels, content = alert.inputs["userLabels"], alert.inputs["documentation"]["content"]
        kind = CATALOG[labels["raptorflow-alert"]]
        severity = labels["severity"].upper()
        assert severity in {kind.severity, kind.standby_severity}
        assert kind.meaning_for(severity == kind.severity) in content
        assert content.endswith(f"/alerts.md#{kind.slug}"), "the page links the runbook section of its entry"
        assert alert.inputs["displayName"].startswith(f"[{severity}] ")
        assert alert.inputs["severity"] == SEVERITIES[severity]["cloud"]


def test_a_page_names_the_host_it_watches(dr_plan):
    alert = next(a for a in dr_plan.of_type(ALERT) if a.name == "monitoring-uptime-api-public")
    assert "`curl -v https://api.raptorflow.app/health`" in alert.inputs["documentation"]["content"]


def test_thresholds_come_from_the_catalog(monkeypatch):
    """Changing an entry's figures changes every alert of that kind, and nothing else has to change."""
    age = CATALOG["backup-age"]
    monkeypatch.setitem(CATALOG, "backup-age", dataclasses.replace(age, threshold=2, window_seconds=600))
    plan = plan_stack("prod")  # not the cached plan: this one runs with the changed entry
    condition = next(a for a in plan.of_type(ALERT) if a.name == "monitoring-full-age").inputs["conditions"][0]
    promql = condition["conditionPrometheusQueryLanguage"]
    assert "or vector(0)) < 2)" in promql["query"] and promql["evaluationInterval"] == "600s"
