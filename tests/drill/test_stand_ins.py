"""The drill's Vercel stand-in and stand-in Pulumi CLI on their own: no namespaces, no root.

The Vercel stand-in's API is driven through its request handler with a build that only records; the CLI's
`up` is driven with the real dr plans and the real promotion diff, its calls to the stand-ins' APIs recorded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from core.contracts import ResourceType
from tools.drill import pulumi_apply, pulumi_cli, vercel
from tools.drill.pulumi_cli import UpError
from tools.failover import Change, diff_plans
from tools.failover_switch import PROMOTED_KEY
from tools.offline import ROOT, unwrap

PROJECT, TEAM = "prj_test", "team_test"
US, EU = "postgresql://raptorflow@10.0.0.1:5432/raptorflow", "postgresql://raptorflow@10.0.0.2:5432/raptorflow"


class Builds:
    """A build that records the variables each deployment was built with."""

    def __init__(self, fail: bool = False) -> None:
        self.built: list[dict[str, str]] = []
        self.fail = fail

    def __call__(self, deployment: vercel.Deployment) -> None:
        if self.fail:
            raise OSError("the app did not start")
        self.built.append(dict(deployment.variables))


def stand_in(builds: Builds) -> vercel.VercelStandIn:
    variables = [vercel.Variable("env_url", vercel.URL_VARIABLE, US, ["production"], False),
                 vercel.Variable("env_key", vercel.KEY_VARIABLE, "the-password", ["production"], True),
                 vercel.Variable("env_preview", "PREVIEW_ONLY", "x", ["preview"], False)]
    return vercel.VercelStandIn(PROJECT, TEAM, "token", variables, builds, "web")


def ask(api: vercel.VercelStandIn, method: str, path: str, body: object = None, team: str = TEAM) -> tuple[int, dict]:
    return api.handle(method, path, {"teamId": team}, body)


def wait_state(api: vercel.VercelStandIn, deployment: str, wanted: str) -> str:
    deadline = time.monotonic() + 10
    state = ""
    while time.monotonic() < deadline:
        state = ask(api, "GET", f"/v13/deployments/{deployment}")[1]["readyState"]
        if state == wanted:
            break
        time.sleep(0.01)
    return state


def test_a_changed_variable_reaches_the_app_only_through_a_redeploy():
    builds = Builds()
    api = stand_in(builds)
    first = api.deploy()
    status, _ = ask(api, "PATCH", f"/v9/projects/{PROJECT}/env/env_url", {"value": EU})
    assert status == 200
    assert api.production is first and first.variables[vercel.URL_VARIABLE] == US, "the serving deployment kept its copy"
    status, listed = api.handle("GET", "/v6/deployments", {"teamId": TEAM, "projectId": PROJECT, "state": "READY"}, None)
    assert listed["deployments"][0]["uid"] == first.id
    status, created = ask(api, "POST", "/v13/deployments", {"name": "web", "project": PROJECT,
                                                            "deploymentId": first.id, "target": "production"})
    assert status == 200 and created["readyState"] == "QUEUED"
    assert wait_state(api, created["id"], "READY") == "READY"
    assert builds.built[-1][vercel.URL_VARIABLE] == EU and "PREVIEW_ONLY" not in builds.built[-1]
    assert api.production is not None and api.production.id == created["id"]
    record = api.redeploys()[-1].to_json()
    assert (record["servingDatabaseHost"], record["databaseHost"]) == ("10.0.0.1", "10.0.0.2"), record
    assert record["readySeconds"] is not None and "the-password" not in json.dumps(record)


def test_the_api_refuses_another_team_and_never_lists_a_sensitive_value():
    api = stand_in(Builds())
    assert ask(api, "GET", f"/v10/projects/{PROJECT}/env", team="team_other")[0] == 403
    status, listed = ask(api, "GET", f"/v10/projects/{PROJECT}/env")
    assert status == 200
    by_key = {e["key"]: e for e in listed["envs"]}
    assert "value" not in by_key[vercel.KEY_VARIABLE] and by_key[vercel.KEY_VARIABLE]["type"] == "sensitive"
    assert by_key[vercel.URL_VARIABLE]["value"] == US
    assert ask(api, "POST", "/v13/deployments", {"name": "web", "project": PROJECT, "deploymentId": "dpl_none"})[0] == 404


def test_a_failed_build_ends_error_and_the_fault_knob_keeps_a_redeploy_building(monkeypatch):
    failing = stand_in(Builds(fail=True))
    failing.production = vercel.Deployment("dpl_old", "web", {}, time.monotonic(), "READY")
    failing.deployments["dpl_old"] = failing.production
    created = ask(failing, "POST", "/v13/deployments", {"name": "web", "project": PROJECT, "deploymentId": "dpl_old"})[1]
    assert wait_state(failing, created["id"], "ERROR") == "ERROR"
    monkeypatch.setenv(vercel.FAULT_VARIABLE, vercel.NEVER_READY)
    builds = Builds()
    stuck = stand_in(builds)
    first = stuck.deploy()  # the drill's own deployments are not affected
    created = ask(stuck, "POST", "/v13/deployments", {"name": "web", "project": PROJECT, "deploymentId": first.id})[1]
    time.sleep(0.2)
    assert ask(stuck, "GET", f"/v13/deployments/{created['id']}")[1]["readyState"] == "BUILDING"
    assert len(builds.built) == 1 and stuck.production is first


def _state(dr_outputs: dict) -> dict:
    return {"stack": "dr", "promotedKey": PROMOTED_KEY, "applied": "false", "config": {}, "outputs": dr_outputs,
            "schedules": {}, "cloudflareApi": "http://cloudflare", "values": {}}


def test_up_applies_the_whole_promotion_diff_to_the_stand_ins(make_plan, monkeypatch):
    before, after = make_plan("dr"), make_plan("dr", f"{PROMOTED_KEY}=true")
    diff = diff_plans(before, after)
    records = [{"id": f"rec-{r.inputs['name']}", "name": r.inputs["name"], "type": r.inputs["type"]}
               for r in before.of_type(ResourceType.DNS_RECORD)]
    envs = [{"id": f"env-{r.inputs['key']}", "key": r.inputs["key"]} for r in before.of_type(ResourceType.VERCEL_VARIABLE)]
    calls: list[tuple[str, str, Any]] = []

    def call(base: str, token: str, method: str, path: str, body: Any = None) -> Any:
        calls.append((method, path.split("?")[0], body))
        return {"result": records} if "dns_records" in path else {"envs": envs}

    monkeypatch.setattr(pulumi_apply, "call", call)
    state = _state({})
    url = next(r for r in after.of_type(ResourceType.VERCEL_VARIABLE) if r.inputs["key"] == vercel.URL_VARIABLE)
    state["values"] = {unwrap(url.inputs["value"]): EU}
    applied = pulumi_apply.apply(diff, after, state)
    assert {(c["type"], c["name"]) for c in applied} == {(c.type, c.name) for c in diff.changed}
    patched = {path: body for method, path, body in calls if method == "PATCH"}
    for record in after.of_type(ResourceType.DNS_RECORD):
        assert patched[f"/zones/{record.inputs['zoneId']}/dns_records/rec-{record.inputs['name']}"] == \
            {"content": record.inputs["content"]}, record.name
    assert patched[f"/v9/projects/{url.inputs['projectId']}/env/env-{vercel.URL_VARIABLE}"]["value"] == EU, \
        "the drill's database stands in for the plan's URL"
    for job in after.of_type(ResourceType.SCHEDULER_JOB):
        assert state["schedules"].get(job.inputs["name"], job.inputs["paused"]) == job.inputs["paused"], job.name
    assert all(site == "standby" for site in state["components"].values())


def test_up_diffs_the_new_plan_with_the_checkpoint_as_tools_failover_diff_does(make_plan, tmp_path):
    before, after = make_plan("dr"), make_plan("dr", f"{PROMOTED_KEY}=true")
    pulumi_apply.checkpoint(tmp_path, "dr", PROMOTED_KEY, "false", ROOT, (before, {}))
    _, planned, diff = pulumi_apply.plan_diff(tmp_path, "dr", PROMOTED_KEY, "false", "true", ROOT)
    expected = diff_plans(before, after)
    assert diff.safe and [(c.urn, c.changes) for c in diff.changed] == [(c.urn, c.changes) for c in expected.changed]
    assert pulumi_apply.checkpointed(tmp_path, "false") is None, "the checkpoint now holds the promoted plan"
    kept = pulumi_apply.checkpointed(tmp_path, "true")
    assert kept is not None and [r.urn for r in kept[0].resources] == [r.urn for r in planned.resources]


def test_up_refuses_a_change_no_stand_in_can_apply_before_applying_anything(make_plan, monkeypatch):
    before, after = make_plan("dr"), make_plan("dr", f"{PROMOTED_KEY}=true")
    diff = diff_plans(before, after)
    calls: list[str] = []
    monkeypatch.setattr(pulumi_apply, "call", lambda *args, **kwargs: calls.append(args[3]))
    diff.changed.append(Change("urn:lb", ResourceType.LOAD_BALANCER, "lb", {"defaultPools": (["a"], ["b"])}))
    record = after.of_type(ResourceType.DNS_RECORD)[0]
    diff.changed.append(Change(record.urn, record.type, record.name, {"ttl": (60, 300)}))
    with pytest.raises(UpError) as refused:
        pulumi_apply.apply(diff, after, _state({}))
    assert f"{ResourceType.LOAD_BALANCER} lb: no stand-in holds this type" in str(refused.value)
    assert f"{record.name}: the stand-in cannot change ['ttl']" in str(refused.value)
    assert calls == [], "nothing is applied when one change cannot be"


def test_the_cli_answers_the_automation_api_and_keeps_config_out_of_the_stack_file(tmp_path, monkeypatch, capsys):
    stack_file = ROOT / "Pulumi.dr.yaml"
    before = stack_file.read_text()
    env = pulumi_cli.install(tmp_path, ROOT, _state({"failoverHostnames": ["a.example"]}))
    monkeypatch.setenv(pulumi_cli.STATE_VARIABLE, env[pulumi_cli.STATE_VARIABLE])
    assert (tmp_path / "bin" / "pulumi").stat().st_mode & 0o100
    assert pulumi_cli.main(["version"]) == 0 and capsys.readouterr().out.strip() == pulumi_cli.VERSION
    assert pulumi_cli.main(["stack", "select", "--stack", "myorg/raptorflow-dr/dr"]) == 0
    assert pulumi_cli.main(["stack", "select", "--stack", "prod"]) == pulumi_cli.ERROR_EXIT
    assert capsys.readouterr().err.startswith("error: no stack named 'prod'")
    assert pulumi_cli.main(["config", "set", PROMOTED_KEY, "--plaintext", "--stack", "dr", "--non-interactive",
                            "--stack", "dr", "--", "true"]) == 0
    assert pulumi_cli.load(tmp_path)["config"] == {PROMOTED_KEY: "true"}
    assert stack_file.read_text() == before, "the checkout's stack file is never written"
    capsys.readouterr()
    assert pulumi_cli.main(["stack", "output", "--json", "--show-secrets", "--stack", "dr"]) == 0
    assert json.loads(capsys.readouterr().out) == {"failoverHostnames": ["a.example"]}
    assert pulumi_cli.main(["refresh", "--stack", "dr"]) == pulumi_cli.ERROR_EXIT
    assert "does not answer `pulumi refresh" in capsys.readouterr().err


def test_the_event_log_ends_with_the_cancel_event(tmp_path):
    log = tmp_path / "events.log"
    pulumi_cli.write_event_log(str(log), True)
    pulumi_cli.write_event_log(str(tmp_path / "failed.log"), False)
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert "summaryEvent" in events[0] and "cancelEvent" in events[-1]
    assert [list(json.loads(line)) for line in Path(tmp_path / "failed.log").read_text().splitlines()] == \
        [["sequence", "timestamp", "cancelEvent"]]
