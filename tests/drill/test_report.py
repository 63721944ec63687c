"""The drill report's two clocks and its term-by-term comparison with the recovery model, on results built here
against the model's assessment of the recorded plans: no world, no root."""

from __future__ import annotations

import json

import pytest

from core.recovery_model import Assessment, assess
from tools.drill import render
from tools.drill.report import MODEL_FACTOR, CommandRun, ScenarioResult, Step, Yardstick, apply_model
from tools.offline import Plan, unwrap

OUTAGE = Yardstick("regionalOutage", replica=True)


@pytest.fixture
def assessments(prod_plan: Plan, dr_plan: Plan) -> dict[str, Assessment]:
    return {a.scenario: a for a in assess((r.type, unwrap(r.inputs)) for p in (prod_plan, dr_plan)
                                          for r in p.resources)}


def _modelled(assessments: dict[str, Assessment], name: str) -> float:
    term = assessments["regionalOutage"].term(name)
    assert term is not None and term.minutes is not None, f"the model has a bounded {name} term"
    return term.minutes * 60


def _outage(assessments: dict[str, Assessment], **plan_seconds: float) -> ScenarioResult:
    """A regional outage whose steps take, in the plan's clock, each term's modelled seconds unless given; the
    detect and propagate waits are compressed 60:1 on the wall."""
    steps = []
    for name in ("detect", "restore", "apply", "propagate", "redeploy"):
        seconds = plan_seconds.get(name, _modelled(assessments, name))
        compressed = name in ("detect", "propagate")
        steps.append(Step(name, f"the {name} step", seconds / 60 if compressed else seconds, seconds, compressed))
    wall = sum(step.wall_seconds for step in steps)
    result = ScenarioResult("regional-outage", wall, 0, 0.0, True, "the US cut", steps=steps,
                            commands=[CommandRun(("python", "-m", "tools.failover", "promote", "--stack", "dr",
                                                  "--yes"), 0, 3.5, "health: every name answers from the EU")])
    apply_model(result, OUTAGE, assessments)
    return result


def test_the_plan_clock_sums_the_steps_and_the_decision_is_its_own_figure(assessments):
    result = _outage(assessments)
    clock, wall = result.plan_clock_rto_seconds, result.measured_rto_seconds
    assert clock is not None and wall is not None
    assert clock == pytest.approx(sum(step.plan_seconds for step in result.steps))
    assert clock > wall, "compressed waits count at plan length"
    assert result.decision_seconds == _modelled(assessments, "decide")
    document = result.to_json()
    assert document["planClockRtoSeconds"] == round(clock, 2)
    assert document["decisionSeconds"] == _modelled(assessments, "decide")
    assert document["assessment"] == "regionalOutage"
    assert document["commands"] == [{"command": "python -m tools.failover promote --stack dr --yes", "exitCode": 0,
                                     "wallSeconds": 3.5, "report": "health: every name answers from the EU"}]
    assert result.met, result.model_findings


def test_each_term_is_measured_beside_its_modelled_term(assessments):
    terms = {row["term"]: row for row in _outage(assessments).to_json()["terms"]}
    assert list(terms) == [term.name for term in assessments["regionalOutage"].terms]
    assert terms["detect"]["planClockSeconds"] == _modelled(assessments, "detect")
    assert terms["detect"]["measuredSeconds"] == round(_modelled(assessments, "detect") / 60, 2)
    assert terms["redeploy"]["modelledSeconds"] == _modelled(assessments, "redeploy")
    assert terms["decide"]["measuredSeconds"] is None, "the decision is declared, never measured"


def test_a_term_beyond_twice_the_model_is_a_finding_that_names_it(assessments):
    modelled = _modelled(assessments, "redeploy")
    slow = _outage(assessments, redeploy=modelled * MODEL_FACTOR + 60)
    assert not slow.met and render._verdict(slow) == "MODEL WRONG"
    assert (f"term redeploy: {modelled * MODEL_FACTOR + 60:.0f} s in the plan's clock is more than 2x the model's "
            f"{modelled:.0f} s (Vercel redeploy {modelled / 60:g} min)") in slow.model_findings
    assert not [f for f in slow.model_findings if f.startswith(("term detect", "term apply", "term restore"))]
    within = _outage(assessments, redeploy=modelled * MODEL_FACTOR)
    assert not [f for f in within.model_findings if f.startswith("term redeploy")], "2x is still within the model"


def test_a_longer_detection_is_named_as_the_detect_term(assessments):
    modelled = _modelled(assessments, "detect")
    result = _outage(assessments, detect=modelled * 3)
    assert any(f.startswith(f"term detect: {modelled * 3:.0f} s in the plan's clock") for f in result.model_findings)


def test_a_modelled_term_never_measured_is_reported(assessments):
    result = _outage(assessments)
    result.steps = [step for step in result.steps if step.term != "redeploy"]
    result.model_findings.clear()
    apply_model(result, OUTAGE, assessments)
    assert any(f.startswith("term redeploy: the model counts") and f.endswith("but the drill never measured it")
               for f in result.model_findings), result.model_findings


def test_a_scenario_without_steps_keeps_its_measured_rto_as_the_plan_clock(assessments):
    result = ScenarioResult("data-deletion", 5.5, 10, 70.0, True, "merged back")
    apply_model(result, Yardstick("dataDeletion", restores_dump=True), assessments)
    assert result.plan_clock_rto_seconds == 5.5 and result.model_findings == []
    assert [row["term"] for row in result.terms()] == ["decide", "restore"]
    assert result.rto_met


def test_the_rto_verdict_is_the_plan_clock_plus_the_decision(assessments):
    result = ScenarioResult("regional-outage", 10.0, 0, 0.0, True, "the US cut")
    apply_model(result, Yardstick("regionalOutage", estimated=False, rpo_objective=False), assessments)
    target = result.target_rto_seconds
    assert target is not None and result.decision_seconds == _modelled(assessments, "decide")
    result.steps = [Step("propagate", "the TTL", 10.0, target - result.decision_seconds + 1, compressed=True)]
    assert not result.rto_met, "within the objective on the wall, over it in the plan's clock with the decision"
    result.steps = [Step("propagate", "the TTL", 10.0, target - result.decision_seconds, compressed=True)]
    assert result.rto_met


def test_text_and_markdown_show_both_clocks_the_terms_and_the_commands(assessments):
    result = _outage(assessments)
    world = {"databaseMb": 16, "durationSeconds": 50, "timeScale": 60, "startedAt": "2026-12-02 13:30 UTC",
             "commit": "abc1234"}
    markdown = render.markdown([result], world, {})
    assert "| scenario | RTO measured | RTO est. | RTO target | RTO plan clock | decision |" in markdown
    assert "| term | measured | plan clock | model |" in markdown
    assert "| redeploy |" in markdown and "| decide | - | 15 min | 15 min |" in markdown
    assert "- `python -m tools.failover promote --stack dr --yes`: exit 0 after 3.5 s" in markdown
    assert "      health: every name answers from the EU" in markdown
    text = render.text([result], world, {})
    assert "RTO plan clock" in text and "command `python -m tools.failover promote --stack dr --yes`: exit 0" in text
    assert json.loads(json.dumps(result.to_json()))["terms"], "the JSON object is plain JSON"


def test_the_outage_plan_clock_is_its_critical_path_nothing_counted_twice():
    from tools.drill.scenarios.regional_outage import critical_path, ttl_plan_seconds

    # Only the TTL is compressed: a client that waited 1.9 s for a 1 s (60 s compressed) TTL waited 60 s of TTL
    # and 0.9 s of real work (a request timing out before it asked again).
    assert ttl_plan_seconds(1.9, 1.0, 60.0) == pytest.approx(60.0 + 0.9)
    assert ttl_plan_seconds(0.5, 1.0, 60.0) == pytest.approx(30.0)
    # At time scale 1 the plan's clock is the wall: the first EU write when it came.
    assert critical_path(40.0, 10.0, 1.0, changed=20.0, answered=21.0, ready=25.0, cached=60.0) == 40.0
    # Scaled 60:1: the page's 3 s are 180 s; the TTL wait (1 s on the wall) is 60 s after the change and ends
    # after the redeploy (READY 5 s after the change), so it gates the write, which came 0.5 s after the later one.
    assert critical_path(25.5, 3.0, 60.0, changed=20.0, answered=21.0, ready=25.0, cached=1.0) == pytest.approx(
        3.0 * 59 + (20.0 + 60.0) + 0.5)
    # A redeploy slower than the TTL gates the write instead; the TTL beside it adds nothing.
    assert critical_path(50.5, 3.0, 60.0, changed=20.0, answered=20.1, ready=50.0, cached=1.0) == pytest.approx(
        3.0 * 59 + 50.0 + 0.5)
    # Without the propagation measured, only the detection is uncompressed.
    assert critical_path(30.0, 3.0, 60.0, changed=None, answered=None, ready=None, cached=1.0) == pytest.approx(
        3.0 * 59 + 30.0)


def test_a_small_restore_is_shown_but_not_held_to_the_models_throughput(assessments):
    model = assessments["databaseCorruption"].term("restore")
    assert model is not None and model.minutes is not None
    slow = 10 * model.minutes * 60
    for reason, finding in ((None, True), ("a 16 MB database restores in pg_restore's start-up time", False)):
        result = ScenarioResult("database-corruption", slow, 0, 0.0, True, "restored",
                                steps=[Step("restore", "backup_job restore", slow, slow, not_compared=reason)])
        apply_model(result, Yardstick("databaseCorruption", restores_dump=True), assessments)
        named = [f for f in result.model_findings if f.startswith("term restore: ")]
        assert bool(named) is finding, result.model_findings
        row = next(r for r in result.to_json()["terms"] if r["term"] == "restore")
        assert row["notCompared"] == reason and row["planClockSeconds"] == round(slow, 2)
