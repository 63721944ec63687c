"""The model learns from the drill (core/recovery_learned.py, tools/readiness.py): the restore throughput, the
replica's lag and the PITR granularity come from the newest drill record that measured them, unless the stack file
declares them; the readiness report says where each came from. Records are filed with the drill's own filing code
into a temporary folder."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from components.config.recovery import RecoverySettings
from components.recovery_objectives import undeclared
from core import limits
from core.recovery_learned import LEARNABLE, UNDECLARED, Measured, with_measured
from core.recovery_model import RECOVERY
from tools.drill import filing, records
from tools.offline import Plan, unwrap
from tools.readiness import assess_plans, measured_figures, model_figures, render_figures

START = datetime(2026, 12, 3, 9, 0, 0, tzinfo=UTC)
PLANS = {"prod": {"stack": "prod"}, "dr": {"stack": "dr"}, "promoted": {"stack": "dr", "promoted": True}}
PATHS = [learnable.path for learnable in LEARNABLE]


def _scenario(name: str, met: bool = True, rpo: float = 1.0) -> dict[str, Any]:
    return {"scenario": name, "met": met, "failure": None, "measuredRpoSeconds": rpo, "planClockRtoSeconds": 60.0}


def _file(folder: Path, day: int, scenarios: list[dict[str, Any]], throughput: dict[str, Any]) -> str:
    when = START + timedelta(days=day)
    world = {"startedAt": when.strftime("%Y-%m-%d %H:%M UTC"), "commit": "c0ffee"}
    _, json_path = filing.write(folder, f"# drill {day}\n", scenarios, world, throughput,
                                records.plan_digests(PLANS), now=when)
    return json_path.name


def _declaration(plan: Plan) -> dict[str, Any]:
    (resource,) = plan.of_type(RECOVERY)
    return unwrap(resource.inputs)


def test_the_repo_stacks_leave_every_learnable_figure_to_the_default(prod_plan: Plan, dr_plan: Plan):
    assert _declaration(prod_plan)[UNDECLARED] == PATHS
    assert _declaration(dr_plan)[UNDECLARED] == PATHS


def test_a_figure_the_stack_file_sets_is_declared_even_at_the_default_value():
    settings = RecoverySettings.model_validate({"restoreMbPerSecond": float(limits.RESTORE_MB_PER_SECOND),
                                                "pitr": {"enabled": True, "rpoMinutes": 5}})
    assert undeclared(settings) == ["databaseReplica.maxLagMinutes"]


def test_the_worst_met_measurement_of_the_last_quarter_wins_and_small_or_failed_ones_never_count(tmp_path: Path):
    _file(tmp_path, -100, [_scenario("database-corruption"), _scenario("regional-outage")],
          {"restoreMbPerSecond": 5.0, "restoredMb": 1200.0, "replicaLagSeconds": 50.0})
    big = {"restoreMbPerSecond": 18.0, "restoredMb": 1200.0, "replicaLagSeconds": 6.0}
    old = _file(tmp_path, 0, [_scenario("database-corruption"), _scenario("regional-outage")], big)
    newer = _file(tmp_path, 1, [_scenario("database-corruption"), _scenario("regional-outage"),
                                _scenario("database-corruption-pitr", rpo=4.5)],
                  {"restoreMbPerSecond": 25.0, "restoredMb": 1300.0, "replicaLagSeconds": 0.3})
    _file(tmp_path, 2, [_scenario("database-corruption"), _scenario("database-corruption-pitr", rpo=2.0)],
          {"restoreMbPerSecond": 2.0, "restoredMb": 16.0})
    _file(tmp_path, 3, [_scenario("database-corruption", met=False), _scenario("regional-outage", met=False),
                        _scenario("database-corruption-pitr", met=False, rpo=999.0)],
          {"restoreMbPerSecond": 1.0, "restoredMb": 4000.0, "replicaLagSeconds": 500.0})
    found = measured_figures(tmp_path)
    assert found["restoreMbPerSecond@application"] == Measured(18.0, old, "2026-12-03"), \
        "the slowest of the quarter, not the newest 25 MB/s; a 16 MB restore is start-up, not throughput; one 100 " \
        "days older than the newest is past the cadence"
    assert found["databaseReplica.maxLagMinutes"] == Measured(6.0 / 60, old, "2026-12-03"), \
        "the longest lag of the quarter, not the newest drill's lighter one"
    assert found["pitr.rpoMinutes"] == Measured(4.5 / 60, newer, "2026-12-04"), "the coarsest, not the newest 2 s"


def test_measured_figures_replace_only_the_defaults_and_the_report_names_each_source(prod_plan: Plan, dr_plan: Plan):
    measured = {"restoreMbPerSecond@application": Measured(7.0, "2026-12-04-090000.json", "2026-12-04"),
                "pitr.rpoMinutes": Measured(0.5, "2026-12-04-090000.json", "2026-12-04")}
    before = {a.scenario: a for a in assess_plans([prod_plan, dr_plan])}
    after = {a.scenario: a for a in assess_plans([prod_plan, dr_plan], measured)}
    restore = after["databaseCorruption"].term("restore")
    assert restore is not None and "at 7 MB/s" in restore.derivation
    slower, faster = after["databaseCorruption"].rto.minutes, before["databaseCorruption"].rto.minutes
    assert slower is not None and faster is not None and slower > faster, "a slower restore"
    assert after["databaseCorruption"].rpo is not None and after["databaseCorruption"].rpo.minutes == 0.5
    (line,) = render_figures(model_figures([prod_plan, dr_plan], measured))
    assert ("restore throughput 7 MB/s, application schema (measured by the drill of 2026-12-04, "
            "2026-12-04-090000.json)") in line
    assert "PITR granularity 30 s (measured by the drill of 2026-12-04" in line
    assert f"replica lag {limits.DATABASE_REPLICA_LAG_MINUTES} min (the plan's default, core/limits.py)" in line


def test_a_declared_figure_beats_the_drill(prod_plan: Plan, dr_plan: Plan):
    resources = [(r.type, copy.deepcopy(unwrap(r.inputs))) for plan in (prod_plan, dr_plan) for r in plan.resources]
    for kind, props in resources:
        if kind == RECOVERY and props["site"] == "primary":
            props["restoreMbPerSecond"] = 50.0
            props[UNDECLARED] = [p for p in props[UNDECLARED] if p != "restoreMbPerSecond"]
    learned, figures = with_measured(resources, {"restoreMbPerSecond@application": Measured(7.0, "r.json", "2026-12-04")})
    assert {f.learnable.path: f.source for f in figures}["restoreMbPerSecond"] == "declared by the primary stack"
    rates = {props["site"]: props["restoreMbPerSecond"] for kind, props in learned if kind == RECOVERY}
    assert rates == {"primary": 50.0, "standby": 50.0}, "the stack that leaves it to the default gets the declared one"


@pytest.mark.parametrize("capability", ["pitr", "databaseReplica"])
def test_no_figure_of_a_capability_the_stacks_do_not_declare(prod_plan: Plan, dr_plan: Plan, capability: str):
    resources = [(r.type, copy.deepcopy(unwrap(r.inputs))) for plan in (prod_plan, dr_plan) for r in plan.resources]
    for kind, props in resources:
        if kind == RECOVERY:
            props[capability]["enabled"] = False
    _, figures = with_measured(resources, {})
    assert not [f for f in figures if f.learnable.path.startswith(f"{capability}.")]
    assert [f for f in figures if f.learnable.path == "restoreMbPerSecond"]


def _bench(folder: Path, name: str, rows: list[tuple[str, str, int, float]]) -> None:
    """A `python -m bench --json` record: (tool, dataset, sizeMb, restoreDatabaseMbPerSecond) rows."""
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(json.dumps([{"tool": tool, "dataset": dataset, "sizeMb": size, "mode": "single",
                                            "restoreDatabaseMbPerSecond": rate} for tool, dataset, size, rate in rows]))


def test_each_schema_kind_takes_the_newest_benchmark_of_its_dataset_at_its_largest_size(tmp_path: Path):
    bench = tmp_path / "docs"
    _bench(bench, "benchmarks-2026-12-01-600mb.json", [("backup_job", "random", 600, 70.0),
                                                        ("backup_job", "app", 600, 30.0)])
    _bench(bench, "benchmarks-2026-12-02-200mb.json", [("backup_job", "random", 200, 99.0),
                                                        ("backup_job", "app", 200, 50.0)])
    _bench(bench, "benchmarks-2026-12-02-600mb.json", [("backup_job", "random", 600, 88.0),
                                                        ("floor: pg_restore -j1", "random", 600, 400.0),
                                                        ("backup_job --mode single", "app", 600, 39.0)])
    (bench / "benchmarks-2026-12-03.json").write_text("{not json")
    found = measured_figures(tmp_path / "drills", bench)
    assert found["restoreMbPerSecond@bulk"] == Measured(88.0, "benchmarks-2026-12-02-600mb.json", "2026-12-02",
                                                        "benchmark"), "the job's row, the newest date, its largest size"
    assert found["restoreMbPerSecond@application"] == Measured(50.0, "benchmarks-2026-12-02-200mb.json",
                                                               "2026-12-02", "benchmark"), \
        "the job's automatic mode, never its forced single-stream row"
    drills = tmp_path / "drills"
    drilled = _file(drills, 0, [_scenario("database-corruption")], {"restoreMbPerSecond": 18.0, "restoredMb": 1200.0})
    assert measured_figures(drills, bench)["restoreMbPerSecond@application"] == Measured(18.0, drilled, "2026-12-03"), \
        "a drill, which runs the incident's own restore, beats the benchmark for the kind it measures"
    assert measured_figures(drills, bench)["restoreMbPerSecond@bulk"].by == "benchmark"


def test_each_stack_takes_the_restore_throughput_of_the_schema_kind_it_declares(prod_plan: Plan, dr_plan: Plan):
    settings = RecoverySettings.model_validate({"schemaKind": "bulk"})
    assert settings.restore_mb_per_second == limits.RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND["bulk"]
    assert "restoreMbPerSecond" in undeclared(settings), "the kind's default is still the stack's to leave out"
    assert RecoverySettings.model_validate({"schemaKind": "bulk", "restoreMbPerSecond": 5.0}).restore_mb_per_second == 5.0
    resources = [(r.type, copy.deepcopy(unwrap(r.inputs))) for plan in (prod_plan, dr_plan) for r in plan.resources]
    for kind, props in resources:
        if kind == RECOVERY and props["site"] == "standby":
            props["schemaKind"] = "bulk"
    measured = {"restoreMbPerSecond@application": Measured(7.0, "r.json", "2026-12-04"),
                "restoreMbPerSecond@bulk": Measured(90.0, "benchmarks-2026-12-02-600mb.json", "2026-12-02", "benchmark")}
    learned, figures = with_measured(resources, measured)
    rates = {props["site"]: props["restoreMbPerSecond"] for kind, props in learned if kind == RECOVERY}
    assert rates == {"primary": 7.0, "standby": 90.0}, "each stack takes its own kind's measurement"
    lines = [f.line() for f in figures if f.learnable.path == "restoreMbPerSecond"]
    assert lines == ["restore throughput 7 MB/s, application schema (measured by the drill of 2026-12-04, r.json)",
                     "restore throughput 90 MB/s, bulk schema (measured by the benchmark of 2026-12-02, "
                     "benchmarks-2026-12-02-600mb.json)"]


def test_stacks_of_two_kinds_are_estimated_at_the_slowest_whatever_their_order_and_the_plan_warns(
        prod_plan: Plan, dr_plan: Plan):
    from tools.readiness import figure_warnings

    resources = [(r.type, copy.deepcopy(unwrap(r.inputs))) for plan in (prod_plan, dr_plan) for r in plan.resources]
    for kind, props in resources:
        if kind == RECOVERY and props["site"] == "standby":
            props["schemaKind"] = "bulk"
            props["restoreMbPerSecond"] = 80.0
    learned, figures = with_measured(resources, {})
    from core.recovery_model import assess

    forward = {a.scenario: a.rto.minutes for a in assess(learned)}
    backward = {a.scenario: a.rto.minutes for a in assess(list(reversed(learned)))}
    assert forward == backward, "the order the stacks are read in changes the estimate"
    restore = next(a for a in assess(learned) if a.scenario == "databaseCorruption").term("restore")
    assert restore is not None and f"at {limits.RESTORE_MB_PER_SECOND:g} MB/s" in restore.derivation, "the slowest"
    warnings = figure_warnings(figures)
    assert any("different recovery.schemaKind values (application, bulk)" in w for w in warnings), warnings
    assert any(w.startswith("warning: the bulk schema's restore throughput (85 MB/s) is the plan's default")
               for w in warnings), warnings
