"""The mutation harness over both stacks: every generated weakening is killed by the pack or allowed with a reason,
and the harness itself notices a pack that lets weakenings through."""

from __future__ import annotations

import fnmatch

import pytest

from policies.raptorflow_policies import POLICIES
from tools import policy_mutants
from tools.mutations import mutants
from tools.policy_check import evaluate
from tools.policy_mutants import ALLOWED_FILE, Allowed, run

SAMPLE = 150  # per stack, with a fixed seed: the full run (`python -m tools.policy_mutants`) takes about a minute


@pytest.fixture(scope="module")
def allowed() -> Allowed:
    return Allowed.load(ALLOWED_FILE.read_text())


def test_every_allowed_entry_has_a_reason_and_matches_a_mutant_of_the_plans(allowed, prod_plan, dr_plan):
    ids = [m.id for plan in (prod_plan, dr_plan) for m in mutants(plan)]
    assert allowed.entries
    for pattern, reason in allowed.entries:
        assert reason.strip(), pattern
        assert any(fnmatch.fnmatchcase(i, pattern) for i in ids), f"{pattern} matches no mutant: a stale entry"
    with pytest.raises(ValueError):
        Allowed.load("- match: '*:remove'\n  reason: ''\n")


def test_mutants_are_generated_from_the_plans_not_a_list(prod_plan, dr_plan):
    ids = {m.id for plan in (prod_plan, dr_plan) for m in mutants(plan)}
    kinds = {mutant_id.split(":")[3] for mutant_id in ids}
    assert kinds == {"flip", "enum", "halve", "zero", "times10", "yearly", "remove", "drop-label", "add-public",
                     "add-acl", "widen-role"}
    # Enum values come from the provider SDK's documentation of the input.
    assert "dr:storage/TransferJob:db-dumps-replica-transfer:enum:transferSpec.transferOptions.overwriteWhen=ALWAYS" in ids
    assert "dr:storage/TransferJob:db-dumps-replica-transfer:enum:status=DISABLED" in ids
    # Every resource is removed once, and every ACL type is added on every bucket.
    assert sum(":remove" in i for i in ids) == len(prod_plan.resources) + len(dr_plan.resources)
    assert {i.split(":")[1] for i in ids if ":add-acl:" in i} == {
        "storage/BucketAccessControl", "storage/DefaultObjectAccessControl", "storage/ObjectAccessControl",
        "storage/BucketACL", "storage/DefaultObjectACL"}


def test_a_sample_of_both_stacks_is_killed_or_allowed(prod_plan, dr_plan, allowed):
    report = run(["prod", "dr"], allowed, sample=SAMPLE, seed=20261202, plans={"prod": prod_plan, "dr": dr_plan})
    assert report["mutants"] == 2 * SAMPLE
    assert report["survivors"] == [] and report["crashed"] == []
    assert report["killed"] + report["allowed"] == report["mutants"] and report["killed"] > report["allowed"]


def test_a_pack_missing_a_rule_lets_weakenings_through(prod_plan):
    """The same alert-condition mutants are killed by the pack and survive it without the rule that reads them."""
    chosen = [m for m in mutants(prod_plan) if ":monitoring/AlertPolicy:" in m.id and ":enum:conditions." in m.id][:12]
    assert len(chosen) == 12
    baseline = {(v.policy, v.urn, v.message) for v in evaluate(prod_plan)}
    without = [p for p in POLICIES if p.name != "raptorflow-monitoring-alerts-as-catalogued"]
    for mutant in chosen:
        weakened = mutant.apply(prod_plan)
        assert {(v.policy, v.urn, v.message) for v in evaluate(weakened)} - baseline, f"{mutant.id} survives the pack"
        assert not {(v.policy, v.urn, v.message) for v in evaluate(weakened, without)} - baseline, mutant.id


def test_the_command_fails_on_a_survivor_and_names_it(monkeypatch, capsys, prod_plan):
    monkeypatch.setattr(policy_mutants, "plan_stack", lambda stack, **_: prod_plan)
    monkeypatch.setattr(policy_mutants.Allowed, "load", classmethod(lambda cls, text: cls([])))
    assert policy_mutants.main(["prod", "--sample", "60", "--seed", "3"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("mutants: 60 of prod") and "SURVIVED prod:" in out
