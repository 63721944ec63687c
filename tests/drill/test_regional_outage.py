"""The regional outage as operators live it, in the small drill (tests/drill/conftest.py runs it once): the P0
page, `python -m tools.failover promote --stack dr --yes` through the stand-in Pulumi CLI and the Vercel
stand-in, the app switching database only with the redeploy, each term timed; and a redeploy that never
becomes READY failing the scenario.
"""

from __future__ import annotations

import json
import os

import pytest

from core.recovery_model import APPLY, DETECT, PROPAGATE, REDEPLOY, RESTORE
from tests.drill.runs import MARKS, drill
from tools.drill import promotion, vercel
from tools.drill.__main__ import parser
from tools.drill.world import ADDRESSES
from tools.failover_switch import EXIT_REDEPLOY_FAILED

pytestmark = MARKS


def test_regional_outage_promotes_through_the_failover_tool_and_its_health_report(small_drill, make_plan):
    commands = small_drill["scenarios"]["regional-outage"]["commands"]
    assert len(commands) == 1 and commands[0]["command"].startswith(" ".join(promotion.COMMAND) + " "), commands
    assert commands[0]["exitCode"] == 0, commands[0]["report"][-2000:]
    report = commands[0]["report"]
    hostnames = make_plan("dr", "raptorflow-dr:promoted=true").outputs["failoverHostnames"]
    assert hostnames, "the promoted plan reports failover hostnames"
    for host in hostnames:
        assert f"https://{host}/health healthy after" in report, f"{host} was not checked over HTTPS: {report[-1500:]}"
    assert "redeploy requested" in report and "READY after" in report


def test_the_eu_app_keeps_the_us_database_until_the_redeploy(small_drill):
    evidence = small_drill["scenarios"]["regional-outage"]["evidence"]
    redeploy, health = evidence["redeploy"], evidence["euAppHealth"]
    assert redeploy["throughApi"] and redeploy["state"] == "READY", redeploy
    assert (redeploy["servingDatabaseHost"], redeploy["databaseHost"]) == (ADDRESSES["us"], ADDRESSES["eu"]), \
        "after the flip the app still served the deployment naming the US database"
    assert health["afterPromotion"]["httpStatus"] == 503, health
    assert health["afterPromotion"]["deployment"] == redeploy["replacing"], health
    assert health["afterRedeploy"]["httpStatus"] == 200, health
    assert health["afterRedeploy"]["deployment"] == redeploy["id"], health


def test_regional_outage_times_every_term_it_measures(small_drill):
    scenario = small_drill["scenarios"]["regional-outage"]
    terms = {t["term"]: t for t in scenario["terms"]}
    for term in (DETECT, RESTORE, APPLY, REDEPLOY, PROPAGATE):
        assert terms[term]["measuredSeconds"] is not None and terms[term]["measuredSeconds"] >= 0, terms[term]
    scale = parser().get_default("time_scale")
    for term in (DETECT, PROPAGATE):  # compressed waits: the plan's clock is the wall times the scale
        assert terms[term]["planClockSeconds"] == pytest.approx(terms[term]["measuredSeconds"] * scale, rel=0.05, abs=1)
    assert scenario["decisionSeconds"] > 0
    page = scenario["evidence"]["page"]
    assert page["severity"] == "p0" and page["firstFailureToPageSeconds"] > 0, page


def test_a_redeploy_that_never_becomes_ready_fails_the_regional_outage():
    # FOR TESTS: the Vercel stand-in's fault knob (docs/drill.md): redeploys through the API never finish.
    result = drill("--scenario", "regional-outage", "--size-mb", "1", "--json",
                   env={**os.environ, vercel.FAULT_VARIABLE: vercel.NEVER_READY})
    assert result.returncode == 1, result.stderr[-3000:]
    scenario = json.loads(result.stdout)[0]
    assert not scenario["met"] and scenario["commands"][0]["exitCode"] == EXIT_REDEPLOY_FAILED, scenario["commands"]
    assert "the Vercel redeploy failed" in scenario["failure"] and "was not READY in time" in scenario["failure"]
    assert "postgresql://" not in result.stdout + result.stderr
