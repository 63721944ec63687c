"""The database-corruption scenarios of the small drill: the dump variant's place in the backup cycle, and the PITR
variant's restore with tools.pitr against the stand-in. Figures are checked against sources the scenarios do not
control: the prod plan's schedule (core.schedule), the model's PITR figure (the plan's pitr.rpoMinutes) and the
command's own report.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from core import limits
from core.contracts import ResourceType
from core.schedule import max_interval_hours
from tests.drill.runs import MARKS
from tools.drill.__main__ import parser
from tools.drill.scenarios import SCENARIOS, database_corruption

PITR = "database-corruption-pitr"


def _drill(test):
    """The drill's marks (tests.drill.runs.MARKS) on one test: the seed test below needs no drill."""
    for mark in MARKS:
        test = mark(test)
    return test


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _pitr_rpo_seconds(prod_plan) -> float:
    declared = prod_plan.of_type(ResourceType.RECOVERY_OBJECTIVES)[0].inputs.get("pitr") or {}
    return float(declared.get("rpoMinutes", limits.PITR_RPO_MINUTES)) * 60


@_drill
def test_pitr_variant_restores_to_the_last_good_second_and_loses_only_writes_after_it(small_drill, prod_plan):
    scenario = small_drill["scenarios"][PITR]
    evidence = scenario["evidence"]
    assert scenario["met"], (scenario["explanation"], scenario["failure"], scenario["modelFindings"])
    target, damaged = evidence["targetUnix"], _unix(evidence["damagedAt"])
    assert _unix(evidence["target"]) == target and float(target).is_integer()
    assert 0 <= damaged - target < 2.0, "the target is the last whole second before the damage"
    assert scenario["measuredRpoSeconds"] == pytest.approx(damaged - target, abs=0.01)
    assert scenario["measuredRpoSeconds"] <= _pitr_rpo_seconds(prod_plan), "within the model's PITR RPO"
    assert scenario["estimatedRpoSeconds"] == _pitr_rpo_seconds(prod_plan)
    assert evidence["lostUnexplained"] == [] and evidence["keptAfterTarget"] == []
    assert scenario["lostRows"] == len(evidence["lostExplained"])
    assert evidence["standInRestore"]["targetUnix"] == target, "the stand-in restored to the requested time"


@_drill
def test_pitr_variant_runs_the_command_and_counts_its_wait_in_the_rto(small_drill):
    scenario = small_drill["scenarios"][PITR]
    (command,) = scenario["commands"]
    assert command["command"].startswith("python -m tools.pitr restore --project-ref ")
    assert f"--to {scenario['evidence']['target']}" in command["command"]
    assert command["exitCode"] == 0
    assert f"restored to {scenario['evidence']['target']}" in command["report"]
    assert "inside it" in command["report"], "the command checked the window before requesting"
    waits = command["wallSeconds"] + scenario["evidence"]["archiveWaitSeconds"]
    assert scenario["measuredRtoSeconds"] >= waits, "RTO includes the archive wait and the command's wait"
    restore = next(term for term in scenario["terms"] if term["term"] == "restore")
    assert restore["measuredSeconds"] == pytest.approx(waits, abs=0.05)
    assert restore["notCompared"], "no PITR term in the model yet: shown, not compared"


@_drill
def test_pitr_variant_runs_right_after_the_dump_variant_and_the_replica_streams_again(small_drill):
    assert SCENARIOS.index(PITR) == SCENARIOS.index(database_corruption.NAME) + 1
    assert "EU replica cloned again" in small_drill["scenarios"][PITR]["explanation"]
    assert small_drill["scenarios"]["regional-outage"]["met"], "the outage after it promoted the re-cloned replica"


@_drill
def test_dump_variant_reports_where_in_the_cycle_the_damage_fell_and_the_worst_case(small_drill, prod_plan):
    scenario = small_drill["scenarios"][database_corruption.NAME]
    cycle = scenario["evidence"]["backupCycle"]
    assert cycle["intervalMinutes"] == pytest.approx(max_interval_hours(cycle["cron"]) * 60)
    assert cycle["worstCaseRpoMinutes"] == cycle["intervalMinutes"]
    assert 0 <= cycle["offsetMinutes"] < cycle["intervalMinutes"]
    scale = parser().get_default("time_scale")
    assert cycle["waitedSeconds"] == pytest.approx(min(cycle["offsetMinutes"] * 60 / scale, cycle["maxWaitSeconds"]),
                                                   abs=0.01)
    assert cycle["planClockRpoMinutes"] >= cycle["offsetMinutes"]
    assert f"{cycle['offsetMinutes']:.0f} min into the {cycle['intervalMinutes']:.0f}-min dump cycle" in \
        scenario["explanation"]
    assert f"worst case {cycle['worstCaseRpoMinutes']:.0f} min" in scenario["explanation"]
    assert scenario["evidence"]["dumpStartedAt"] != small_drill["scenarios"]["table-drop"]["evidence"]["dumpStartedAt"], \
        "the cycle starts with a dump of its own"
    assert scenario["measuredRpoSeconds"] == pytest.approx(cycle["planClockRpoMinutes"] * 60), "the plan's clock"
    assert scenario["estimatedRpoSeconds"] == cycle["worstCaseRpoMinutes"] * 60, "held to the dump path's worst case"
    assert scenario["targetRpoSeconds"] is None, "the corruption RPO objective is PITR's, not the dump's"
    assert scenario["evidence"]["wallRpoSeconds"] <= scenario["measuredRpoSeconds"]


@dataclass
class _Options:
    time_scale: float


@dataclass
class _Plans:
    prod: dict[str, Any]


@dataclass
class _Drill:
    plans: _Plans
    options: _Options


def test_the_damage_offset_is_drawn_inside_the_dump_interval_and_fixed_by_the_seed(prod_plan, monkeypatch):
    drill: Any = _Drill(_Plans(prod_plan.to_json()), _Options(time_scale=1e9))  # a wait of nanoseconds
    monkeypatch.setenv(database_corruption.SEED_VARIABLE, "20261202")
    first, second = database_corruption.offset_in_cycle(drill), database_corruption.offset_in_cycle(drill)
    interval = max_interval_hours(first["cron"]) * 60
    assert first == second, "the same seed places the damage at the same point"
    assert first["offsetMinutes"] == round(random.Random(20261202).random() * interval, 2)
    assert first["intervalMinutes"] == interval == first["worstCaseRpoMinutes"]
    monkeypatch.setenv(database_corruption.SEED_VARIABLE, "not-a-number")
    with pytest.raises(database_corruption.DrillError, match=database_corruption.SEED_VARIABLE):
        database_corruption.offset_in_cycle(drill)
