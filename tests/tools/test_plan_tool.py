"""The offline plan CLI: the tree, the documented JSON shape, overrides and secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.limits import RETENTION_DAYS, SECONDS_PER_DAY
from policies.raptorflow_policies import POLICIES
from tools.offline import ROOT, SECRET_SIG, SIG_KEY, plan_stack, redact
from tools.stack_files import StackFileError


def test_json_plan_has_the_documented_shape(run_cli):
    # In this process: test_policy_gate runs `python -m tools.plan prod dr --json` as its own process.
    result = run_cli("tools.plan", "prod", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert set(plan) == {"stack", "resources", "outputs", "policy", "readiness", "figures", "placeholderSecrets"}
    assert {figure["figure"] for figure in plan["figures"]} == {"restoreMbPerSecond", "pitr.rpoMinutes"}, \
        "prod declares PITR and no replica"
    assert all(set(figure) - {"schemaKind"} == {"figure", "title", "value", "unit", "source"} for figure in plan["figures"])
    assert [f["schemaKind"] for f in plan["figures"] if f["figure"] == "restoreMbPerSecond"] == ["application"]
    assert plan["stack"] == "prod"
    assert plan["placeholderSecrets"] == ["databaseUrl", "scratchDatabaseUrl", "slackAuthToken",
                                          "configVaultSecrets.STRIPE_SECRET_KEY", "configVaultSecrets.RESEND_API_KEY"]
    assert plan["policy"]["summary"].startswith(f"policies: {len(POLICIES)} rules")
    urns = {r["urn"] for r in plan["resources"]}
    for resource in plan["resources"]:
        assert set(resource) == {"urn", "type", "name", "parent", "protect", "dependencies", "import",
                                 "ignoreChanges", "retainOnDelete", "inputs"}
        assert isinstance(resource["retainOnDelete"], bool)
        assert all(isinstance(path, str) for path in resource["ignoreChanges"])
        assert set(resource["dependencies"]) <= urns, f"{resource['name']} depends on an unknown resource"
        assert resource["parent"] is None or resource["parent"].endswith("pulumi:pulumi:Stack::raptorflow-dr-prod") \
            or resource["parent"] in urns, f"{resource['name']} has an unknown parent"
    bucket = next(r for r in plan["resources"] if r["name"] == "db-dumps-bucket")
    assert bucket["inputs"]["retentionPolicy"]["retentionPeriod"] == \
        str(RETENTION_DAYS["database-dumps"] * SECONDS_PER_DAY), "inputs use engine camelCase, as the API's strings"
    assert plan["outputs"]["databaseDumpsBucket"] == bucket["inputs"]["name"]


def test_tree_lists_every_resource_with_protection_and_outputs(run_cli, dr_plan):
    result = run_cli("tools.plan", "dr")
    assert result.returncode == 0, result.stderr
    for resource in dr_plan.resources:
        assert f"  {resource.name}" in result.stdout, f"{resource.name} missing from the tree"
    assert "db-dumps-replica-sink-bucket  [protected]" in result.stdout
    assert "transferSpec.transferOptions.deleteObjectsUniqueInSink: false" in result.stdout
    assert "databaseDumpsReplicaBucket: raptorflow-dr-db-dumps-replica" in result.stdout


def test_several_stacks_as_json_make_a_list(run_cli):
    result = run_cli("tools.plan", "prod", "dr", "--json")
    assert result.returncode == 0, result.stderr
    assert [plan["stack"] for plan in json.loads(result.stdout)] == ["prod", "dr"]


def test_dr_reads_prods_outputs_through_a_stack_reference(dr_plan, prod_plan):
    (reference,) = dr_plan.of_type("pulumi:pulumi:StackReference")
    assert reference.inputs["name"] == "raptorflow/raptorflow-dr/prod"
    sources = {job.inputs["transferSpec"]["gcsDataSource"]["bucketName"]
               for job in dr_plan.of_type("gcp:storage/transferJob:TransferJob") if "transferSpec" in job.inputs}
    assert sources == {prod_plan.outputs["databaseDumpsBucket"], prod_plan.outputs["userFilesBucket"]}


def test_secure_values_reach_the_program_as_secrets_and_never_print(run_cli, stack_file):
    # The shape of a passphrase-provider ciphertext: v1:<12-byte nonce>:<ciphertext with its 16-byte tag>.
    ciphertext = "v1:bm9uY2VOT05DRTEy:Y2lwaGVydGV4dC1uZXZlci1wcmludGVk"
    salt = "v1:c2FsdHNhbHQ=:v1:bm9uY2VOT05DRTEy:Y2lwaGVydGV4dC1vZi1wdWx1bWk="
    path = stack_file("dr", lambda config: config.update({"cloudflare:apiToken": {"secure": ciphertext}}),
                      encryptionsalt=salt)
    for extra in ((), ("--json",)):
        result = run_cli("tools.plan", "dr", "--stack-file", str(path), *extra)
        assert result.returncode == 0, result.stderr
        assert ciphertext not in result.stdout + result.stderr


def test_redact_keeps_the_secret_signature_but_not_the_value():
    wrapped = {"data": {SIG_KEY: SECRET_SIG, "value": "postgresql://user:hunter2@db/prod"}, "plain": "ok"}
    shown = redact(wrapped)
    assert shown == {"data": {SIG_KEY: SECRET_SIG, "value": "[secret]"}, "plain": "ok"}
    assert "hunter2" not in json.dumps(shown)


def _dr_file_with_prod_stack(tmp_path: Path, prod_stack: str) -> Path:
    text = (ROOT / "Pulumi.dr.yaml").read_text()
    assert "    prodStack: raptorflow/raptorflow-dr/prod\n" in text
    path = tmp_path / "Pulumi.dr.yaml"
    path.write_text(text.replace("raptorflow/raptorflow-dr/prod\n", f"{prod_stack}\n"))
    return path


@pytest.mark.parametrize("prod_stack, reason", [
    ("raptorflow/raptorflow-dr/dr", "this stack itself"),
    ("raptorflow/raptorflow-dr/staging", "and there is no Pulumi.staging.yaml"),
    ("raptorflow/storefront/prod", "a stack of the project 'storefront', not of raptorflow-dr"),
], ids=["itself", "no-such-stack", "other-project"])
def test_a_prod_stack_the_plan_cannot_read_is_one_error_naming_the_key(run_cli, tmp_path, prod_stack, reason):
    # These planned the standby against no outputs at all: "program error (KeyError): 'project'".
    path = _dr_file_with_prod_stack(tmp_path, prod_stack)
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"error: {path}: raptorflow-dr:standby.prodStack is '{prod_stack}', {reason}; "
                                    "it must name the primary stack this standby reads, as org/project/stack, "
                                    "with a stack file here: "), result.stderr
    assert "prod" in result.stderr.rsplit("stack file here: ", 1)[1]


def test_a_prod_stack_given_with_set_is_named_as_such(run_cli):
    result = run_cli("tools.plan", "dr", "--set", "raptorflow-dr:standby.prodStack=raptorflow/raptorflow-dr/dr")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --set: raptorflow-dr:standby.prodStack is 'raptorflow/raptorflow-dr/dr', "
                                    "this stack itself; "), result.stderr


def test_stacks_referencing_each_other_are_refused_not_planned_forever(tmp_path):
    # Two standbys reading each other recursed until RecursionError; it is refused before any program runs. (A
    # primary stack reads no other stack: its `standby` section is refused by validation, not followed.)
    dr = (ROOT / "Pulumi.dr.yaml").read_text()
    assert "prodStack: raptorflow/raptorflow-dr/prod\n" in dr
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.dr.yaml").write_text(dr.replace("raptorflow-dr/prod\n", "raptorflow-dr/dr2\n"))
    (tmp_path / "Pulumi.dr2.yaml").write_text(dr.replace("raptorflow-dr/prod\n", "raptorflow-dr/dr\n"))
    with pytest.raises(StackFileError) as caught:
        plan_stack("dr", root=tmp_path)
    assert str(caught.value).startswith("Pulumi.dr2.yaml: raptorflow-dr:standby.prodStack is 'raptorflow/raptorflow-dr/dr', "
                                        "which leads back to it (dr -> dr2 -> dr); "), str(caught.value)
