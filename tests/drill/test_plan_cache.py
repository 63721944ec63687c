"""The plan cache of tests (tools/drill/plan_cache.py): the stand-in Pulumi CLI's `up` on unchanged inputs runs the
program once, and any change to what a plan is made from - the stack file, the program's source, the override -
runs it again; a drill's setup starts no planner for plans an earlier drill of the same inputs kept.

The program is replaced by a counter here (each plan it makes is numbered), on a copy of the project, so that a
test can change the copy's files; what the real plans are is tests/drill/test_stand_ins.py's to check.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.drill import plan_cache, plans, pulumi_apply
from tools.failover_switch import PROMOTED_KEY
from tools.offline import ROOT, Plan


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what a plan is made from."""
    root = tmp_path / "project"
    root.mkdir()
    for path in [ROOT / "__main__.py", *ROOT.glob("Pulumi*.yaml")]:
        shutil.copy(path, root / path.name)
    for name in plan_cache.SOURCE_FOLDERS:
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture
def programs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...], Path]]:
    """Every run of the program: (stack, overrides, root); each plan's `outputs` say which run made it."""
    made: list[tuple[str, tuple[str, ...], Path]] = []

    def plan_stack(stack: str, overrides: tuple[str, ...], root: Path, as_filed: dict[str, Plan]) -> Plan:
        made.append((stack, overrides, root))
        as_filed.setdefault("prod", Plan("prod", [], {"run": len(made)}))
        return Plan(stack, [], {"run": len(made)})

    monkeypatch.setattr(pulumi_apply, "plan_stack", plan_stack)
    return made


def up(folder: Path, root: Path, wanted: str) -> Plan:
    """What `up` plans with `promoted` as `wanted` (the checkpoint first made as deployed with false)."""
    if not (folder / pulumi_apply.CHECKPOINT).exists():
        folder.mkdir()
        pulumi_apply.checkpoint(folder, "dr", PROMOTED_KEY, "false", root, (Plan("dr", []), {}))
    applied = "true" if pulumi_apply.checkpointed(folder, "true") else "false"
    return pulumi_apply.plan_diff(folder, "dr", PROMOTED_KEY, applied, wanted, root)[1]


def test_up_on_unchanged_inputs_runs_the_program_once(project, programs, tmp_path, monkeypatch):
    monkeypatch.setenv(plan_cache.VARIABLE, str(tmp_path / "plans"))
    first = up(tmp_path / "a", project, "false")
    again = up(tmp_path / "b", project, "false")  # another world, the same cache
    assert len(programs) == 1, programs
    assert again.outputs == first.outputs == {"run": 1}, "the kept plan, not a new one"
    kept = pulumi_apply.checkpointed(tmp_path / "b", "false")
    assert kept is not None and kept[1] == {"prod": Plan("prod", [], {"run": 1})}, "the referenced plans kept too"
    assert up(tmp_path / "b", project, "true").outputs == {"run": 2}, "another value of the override is planned"
    assert up(tmp_path / "b", project, "false").outputs == {"run": 1}
    assert len(programs) == 2


@pytest.mark.parametrize("changed", ["Pulumi.dr.yaml", "Pulumi.prod.yaml", "__main__.py",
                                     "components/sites.py", "core/limits.py", "tools/offline.py"])
def test_a_change_to_what_the_plan_is_made_from_runs_the_program_again(project, programs, tmp_path, monkeypatch,
                                                                       changed):
    monkeypatch.setenv(plan_cache.VARIABLE, str(tmp_path / "plans"))
    assert up(tmp_path / "a", project, "false").outputs == {"run": 1}
    edited = project / changed
    edited.write_text(edited.read_text() + "\n# edited\n")
    assert up(tmp_path / "b", project, "false").outputs == {"run": 2}, f"a changed {changed} read the old plan"
    assert up(tmp_path / "c", project, "false").outputs == {"run": 2}, "the new inputs' plan is kept in turn"


def test_without_the_variable_every_up_runs_the_program(project, programs, tmp_path, monkeypatch):
    monkeypatch.delenv(plan_cache.VARIABLE, raising=False)
    up(tmp_path / "a", project, "false")
    up(tmp_path / "b", project, "false")
    assert len(programs) == 2, "a drill times `up` with the program's run, as a real `pulumi up` runs it every time"
    assert not (tmp_path / "plans").exists(), "nothing kept"


def test_a_drill_starts_no_planner_for_plans_kept_from_an_earlier_drill_of_the_same_inputs(tmp_path, monkeypatch):
    started: list[tuple[str, ...]] = []

    def start(module: str, *args: str) -> subprocess.Popen[str]:  # a planner printing its plans' JSON
        started.append(args)
        documents = [{"stack": s, "resources": []} for s in args if s in ("prod", "dr")]
        printed = json.dumps(documents if len(documents) > 1 else documents[0])
        return subprocess.Popen([sys.executable, "-c", f"print({printed!r})"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    monkeypatch.setattr(plans, "_start", start)
    monkeypatch.setenv(plan_cache.VARIABLE, str(tmp_path / "plans"))
    first = plans.PlanRun().finish()
    assert len(started) == 2, started
    again = plans.PlanRun().finish()
    assert len(started) == 2, "the second drill's setup started planners again"
    assert (again.prod, again.dr, again.promoted) == (first.prod, first.dr, first.promoted)
    monkeypatch.delenv(plan_cache.VARIABLE)
    plans.PlanRun().finish()
    assert len(started) == 4, "without the variable every drill plans"
