"""The security-breach scenario of the small drill (tests/drill/conftest.py runs it once): the operator's
`python -m tools.rotate dr` against the real PostgreSQL primary and replica, the stand-in Pulumi CLI, the Vercel
stand-in and the Secret Manager stand-in, checked against what the drill does not control - the rotation
command's own exit code and report, the Secret Manager stand-in's versions, the deployment the apps serve and the
workload's ledger.
"""

from __future__ import annotations

from typing import Any

from core.recovery_model import APPLY, REDEPLOY
from core.resource_types import ResourceType
from tests.drill.runs import MARKS

pytestmark = MARKS
NAME = "security-breach"


def breach(small_drill: dict[str, Any]) -> dict[str, Any]:
    scenario: dict[str, Any] = small_drill["scenarios"][NAME]
    return scenario


def test_the_rotation_command_ran_as_the_runbook_gives_it_and_exited_0(small_drill):
    scenario = breach(small_drill)
    assert scenario["failure"] is None, scenario["failure"]
    [command] = scenario["commands"]
    assert command["command"].startswith("python -m tools.rotate dr ") and command["exitCode"] == 0, command
    report = command["report"]
    assert "rotation finished" in report and "step disable-old-versions: finished" in report, report
    # The drill replaces every value it knows (old and new passwords, URLs, tokens) with [secret] in what it shows:
    # none in the command's own output means the command printed none.
    assert "[secret]" not in report, report
    for manual in ("slackAuthToken", "cloudflareExportToken", "scratchDatabaseUrl", "vercel:apiToken"):
        assert f"dr {manual}:" in report, f"{manual} is not listed as manual"


def test_the_leaked_password_is_refused_and_no_acknowledged_write_is_lost(small_drill):
    scenario = breach(small_drill)
    evidence = scenario["evidence"]
    assert evidence["oldPasswordRefused"] is True and evidence["newPasswordAccepted"] is True, evidence
    assert evidence["ledger"]["ok"] and evidence["ledger"]["missing"] == [], evidence["ledger"]
    assert scenario["lostRows"] == 0 and scenario["measuredRpoSeconds"] == 0, "RPO immediate"
    assert evidence["appHealth"]["httpStatus"] == 200, evidence["appHealth"]


def test_every_holder_changed_and_only_the_replaced_secret_version_is_retired(small_drill):
    evidence = breach(small_drill)["evidence"]
    versions = evidence["secretVersions"]
    [name] = [name for name in versions if name.endswith("-database-url") and not name.endswith("-scratch-database-url")]
    # DELETE (pulumi-gcp's default): `up` destroys it; DISABLE: `up` disables it; ABANDON: tools.rotate disables it.
    retired = "DESTROYED" if evidence["deletionPolicies"][name] == "DELETE" else "DISABLED"
    assert versions[name] == [retired, "ENABLED"], versions
    assert all(states == ["ENABLED"] for name, states in versions.items() if name.endswith("-cloudflare-token")), versions
    applied = {(change["type"], change["name"]) for change in evidence["applied"]}
    assert any(kind == ResourceType.SECRET_VERSION for kind, _ in applied), applied
    assert any(kind == ResourceType.VERCEL_VARIABLE and "service-role-key" in name for kind, name in applied), applied


def test_the_apps_write_on_a_new_deployment_and_the_terms_are_measured(small_drill):
    scenario = breach(small_drill)
    redeploy = scenario["evidence"]["redeploy"]
    assert redeploy["state"] == "READY" and redeploy["throughApi"], redeploy
    assert redeploy["databaseHost"] == redeploy["servingDatabaseHost"], "the same database, a new credential"
    terms = {term["term"]: term for term in scenario["terms"]}
    assert terms[APPLY]["measuredSeconds"] > 0 and terms[REDEPLOY]["measuredSeconds"] > 0, terms
    assert scenario["measuredRtoSeconds"] > scenario["evidence"]["readyAfterMarkSeconds"], "the first write came after READY"
    assert scenario["evidence"]["appHealth"]["deployment"] == redeploy["id"], "the app serves the new deployment"
    assert scenario["measuredRtoSeconds"] <= scenario["targetRtoSeconds"], scenario
