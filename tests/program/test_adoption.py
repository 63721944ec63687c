"""Adopting what already exists: every DNS name and Vercel variable is declared existing (with its id) or new, and
the adopting run imports whatever the live resource holds.

The engine's rule for the `import` option (Pulumi's import design notes, developer-docs/architecture/import.md):
it reads the live inputs, copies each `ignore_changes` input from them into the program's, and then imports
only when no input differs ("inputs to import do not match the existing resource"). `engine_imports` below is
that rule, the stricter one (CLIs since pulumi/pulumi#19339 import and then update instead): what passes it
imports on every CLI without touching the live resource. The live states are generated, not chosen.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.offline import Plan, Resource, unwrap

RECORD = "cloudflare:index/dnsRecord:DnsRecord"
VARIABLE = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
ADOPTING = "raptorflow-dr:deploy.adopting=true"


def engine_imports(resource: Resource, live: dict[str, Any]) -> bool:
    """Whether `pulumi up` imports `resource` over a live resource holding `live` (else it stops with "inputs to
    import do not match the existing resource")."""
    program = unwrap(resource.inputs)
    for key in resource.ignore_changes:
        program[key] = live.get(key)
    return all(program.get(key) == live.get(key) for key in {*program, *live})


def hand_made(resource: Resource, draw: st.DrawFn) -> dict[str, Any]:
    """A live resource that serves the same name or key, as someone made it by hand: same identity, anything
    else as they left it (a sensitive Vercel value reads back as null)."""
    inputs = unwrap(resource.inputs)
    if resource.type == RECORD:
        return {
            "zoneId": inputs["zoneId"], "name": inputs["name"], "type": inputs["type"],
            "content": draw(st.sampled_from([inputs["content"], "192.0.2.7", "origin.example.net"])),
            "proxied": draw(st.booleans()), "ttl": draw(st.sampled_from([1, 60, 300, 3600])),
            **draw(st.sampled_from([{}, {"comment": "set up by hand"}])),
        }
    return {
        "projectId": inputs["projectId"], "teamId": inputs["teamId"], "key": inputs["key"],
        "value": None if draw(st.booleans()) else draw(st.text(max_size=20)),
        "sensitive": draw(st.booleans()),
        "targets": draw(st.sampled_from([["production"], ["production", "preview"]])),
        **draw(st.sampled_from([{}, {"comment": "old"}])),
    }


def imported(plan: Plan) -> list[Resource]:
    return [r for r in plan.resources if r.import_id]


def test_the_stack_file_declares_every_name_and_variable_and_imports_the_existing_ones(dr_plan):
    adopted = {r.name for r in imported(dr_plan)}
    assert adopted == {"dns-apex-record", "dns-app-record", "vercel-env-region", "vercel-env-supabase-url",
                       "vercel-env-supabase-service-role-key"}
    assert dr_plan.named("dns-www-record").import_id is None and dr_plan.named("dns-api-record").import_id is None
    assert dr_plan.named("vercel-env-storage-bucket").import_id is None


def test_a_normal_run_ignores_nothing_so_failover_updates_every_value(dr_plan, make_plan):
    promoted = make_plan("dr", "raptorflow-dr:promoted=true")
    for plan in (dr_plan, promoted):
        assert [r.name for r in plan.resources if r.ignore_changes] == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_adopting_run_imports_whatever_the_live_resource_holds(make_plan, data):
    adopting = make_plan("dr", ADOPTING)
    normal = make_plan("dr")
    resources = imported(adopting)
    assert len(resources) == 5
    for resource in resources:
        live = hand_made(resource, data.draw)
        assert engine_imports(resource, live), f"{resource.name}: the adopting run's import would fail over {live}"
    # Without the adopting run, a hand-made record (no comment of ours) or a sensitive variable (read back as
    # null) never imports: that is the failure the adopting run exists for.
    for resource in imported(normal):
        live = hand_made(resource, data.draw)
        live["value" if resource.type == VARIABLE else "comment"] = None
        assert not engine_imports(resource, live)


def test_the_adopting_run_still_refuses_a_different_resource(make_plan):
    # Only what the program may change is taken from the live resource: a record of another type, or a variable
    # of another key, is not the one the config declared, and the import must fail rather than take it over.
    record = make_plan("dr", ADOPTING).named("dns-apex-record")
    live = {**unwrap(record.inputs), "type": "CNAME"}
    assert not engine_imports(record, live)
    variable = make_plan("dr", ADOPTING).named("vercel-env-region")
    assert not engine_imports(variable, {**unwrap(variable.inputs), "key": "REGION_OLD"})
    assert set(record.ignore_changes) == {"content", "proxied", "ttl", "comment"}
    assert set(variable.ignore_changes) == {"value", "sensitive", "targets", "comment"}


def _hostname(config: dict, name: str) -> dict:
    return next(h for h in config["raptorflow-dr:standby"]["failover"]["hostnames"] if h["name"] == name)


@pytest.mark.parametrize("edit, expected", [
    (lambda c: _hostname(c, "@").pop("existingRecordId"),
     "'@' is declared existing but has no existingRecordId: creating it again would fail (Cloudflare 81053) or "
     "add a round-robin twin"),
    (lambda c: _hostname(c, "www").pop("state"), "hostnames.1.state: Field required"),
    (lambda c: _hostname(c, "www").update(existingRecordId="0123456789abcdef0123456789abcdef"),
     "'www' is declared new but has an existingRecordId"),
    (lambda c: c["raptorflow-dr:standby"]["vercel"]["existingEnvIds"].pop("REGION"),
     "REGION is declared existing but existingEnvIds has no id for it: creating it again fails with ENV_CONFLICT"),
    (lambda c: c["raptorflow-dr:standby"]["vercel"]["variableStates"].pop("STORAGE_BUCKET"),
     "variableStates does not say whether ['STORAGE_BUCKET'] already exist in Vercel"),
    (lambda c: c["raptorflow-dr:standby"]["vercel"]["variableStates"].update(TYPO="new"),
     "variableStates names ['TYPO'], which are not among `variables` or `secretVariables`"),
    (lambda c: _hostname(c, "app").update(existingRecordId=_hostname(c, "@")["existingRecordId"]),
     "existingRecordId ['3c9f1e2d4b5a69788796a5b4c3d2e1f0'] is given to more than one hostname"),
    (lambda c: c["raptorflow-dr:standby"]["vercel"]["existingEnvIds"].update(SUPABASE_URL="Qm3xT8vLw2RkP9aZ"),
     "existingEnvIds ['Qm3xT8vLw2RkP9aZ'] is given to more than one variable"),
], ids=["existing-without-id", "undeclared-name", "new-with-id", "existing-variable-without-id",
        "undeclared-variable", "unknown-variable", "one-record-twice", "one-variable-twice"])
def test_the_plan_refuses_to_guess_whether_a_name_or_variable_exists(run_cli, stack_file, edit, expected):
    path = stack_file("dr", edit)
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"invalid stack config in {path}" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_the_adopting_flags_never_live_in_a_stack_file(run_cli, stack_file):
    # Left on, adopted records and variables would ignore every later change - a failover among them.
    path = stack_file("dr", lambda c: c.update({"raptorflow-dr:deploy": {"adopting": True}}))
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {path}: raptorflow-dr:deploy.adopting is set only by `python -m tools.adopt` for one run, never in "
        "a stack file (left on, adopted records and variables would ignore every later change, a failover among "
        "them); remove it")
    refused = run_cli("tools.plan", "dr", "--set", "raptorflow-dr:deploy.adopting=yes")
    assert refused.returncode == 2 and "deploy.adopting: Input should be a valid boolean (got 'yes')" in refused.stderr


def test_the_pack_refuses_a_failover_record_that_ignores_what_a_promotion_changes(run_cli):
    result = run_cli("tools.plan", "dr", "--set", "raptorflow-dr:deploy.adopting=true")
    assert result.returncode == 1, "the adopting run is tools.adopt's alone: a pull request with it is refused"
    assert "[mandatory] raptorflow-failover-hostnames-complete  dns-apex-record: dns-apex-record ignores changes " \
           "to its content" in result.stdout
