"""The failback scenario of the small drill: after the regional outage, `python -m tools.failback` brings the US
back as the primary with the EU streaming from it, no acknowledged write lost, writes paused for a measured time,
and the apps healthy on the US database. Figures are checked against the command's own timed report and the
workload's acknowledgements, which the scenario does not compute."""

from __future__ import annotations

from typing import Any

import pytest

from tests.drill.runs import MARKS
from tools.drill.scenarios import SCENARIOS
from tools.drill.world import ADDRESSES

pytestmark = MARKS
NAME = "failback"


@pytest.fixture
def failback(small_drill: dict[str, Any]) -> dict[str, Any]:
    """The scenario's JSON object."""
    assert SCENARIOS.index(NAME) == SCENARIOS.index("regional-outage") + 1, "failback must run right after the outage"
    return small_drill["scenarios"][NAME]


def test_failback_loses_no_acknowledged_write_and_is_met(failback: dict[str, Any]) -> None:
    assert failback["failure"] is None, failback["failure"]
    assert failback["lostRows"] == 0 and failback["evidence"]["lostAcked"] == []
    assert failback["dataVerified"], failback["evidence"]["ledger"]
    assert failback["met"], (failback["explanation"], failback["modelFindings"])


def test_failback_ends_with_the_us_primary_and_the_eu_streaming_from_it(failback: dict[str, Any]) -> None:
    evidence = failback["evidence"]
    assert evidence["usPrimary"]
    assert {"application": "eu", "state": "streaming"} in evidence["replicationOnUs"], evidence["replicationOnUs"]
    phases = [p["phase"] for p in evidence["phases"]]
    assert phases[0] in ("rewind", "rebuild") and phases[-2:] == ["follow", "failback"], phases
    assert phases.index("stream") < phases.index("switchover") < phases.index("flip") < phases.index("follow")


def test_failback_times_redundancy_pause_and_total_from_the_commands_report(failback: dict[str, Any]) -> None:
    evidence = failback["evidence"]
    took = {p["phase"]: p["seconds"] for p in evidence["phases"]}
    assert evidence["redundancyBackSeconds"] == pytest.approx(
        took.get("rewind", 0) + took.get("rebuild", 0) + took["stream"], abs=0.05)
    paused = evidence["writesPausedSeconds"]
    assert paused is not None and paused > 0, "writes never paused: the switchover did not happen under load"
    assert paused <= evidence["totalSeconds"]
    assert evidence["totalSeconds"] >= took["failback"] - 0.05
    command = failback["commands"][0]
    assert command["command"].startswith("python -m tools.failback ") and command["exitCode"] == 0
    assert "password" not in command["command"] and "password" not in command["report"]


def test_failback_apps_serve_the_us_database_after_the_redeploy(failback: dict[str, Any]) -> None:
    evidence = failback["evidence"]
    assert evidence["productionDatabaseHost"] == ADDRESSES["us"]
    assert evidence["redeploy"] is not None and evidence["redeploy"]["state"] == "READY", evidence["redeploy"]
    for site, health in evidence["appHealthAfterRedeploy"].items():
        assert health["httpStatus"] == 200, (site, health)
    terms = {row["term"] for row in failback["terms"] if row["measuredSeconds"] is not None}
    assert {"restore", "apply", "redeploy", "propagate"} <= terms, terms


def test_failback_run_again_changes_nothing(failback: dict[str, Any]) -> None:
    again = failback["evidence"]["secondRun"]
    assert again["exitCode"] == 0 and again["phases"] == [], again["report"]
    assert "nothing to do" in again["report"]
    assert [c["exitCode"] for c in failback["commands"]] == [0, 0]
