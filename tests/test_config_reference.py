"""The stack-file JSON Schema is generated from the config model: the committed copy matches it, and it accepts
the repo's stack files and refuses what the model refuses."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from tools.config_reference import SCHEMA_PATH, main, rendered
from tools.offline import ROOT


def test_the_committed_schema_matches_the_model(capsys):
    assert SCHEMA_PATH.read_text() == rendered(), "run `python -m tools.config_reference` and commit the schema"
    assert main(["--check"]) == 0


def violations(document: dict) -> list[str]:
    """What the committed schema finds wrong with a stack file, one message per problem."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    return [error.message for error in validator.iter_errors(document)]


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_the_repo_stack_files_follow_the_schema(stack):
    assert violations(yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())) == []


@pytest.mark.parametrize("change", [
    lambda config: config.update({"raptorflow-dr:retentionDays": 30}),
    lambda config: config["raptorflow-dr:databaseBackup"].update(cpu="3"),
    lambda config: config.update({"raptorflow-dr:databaseUrl": {"secure": 5}}),
], ids=["unknown-key", "cpu-cloud-run-refuses", "secure-not-a-string"])
def test_the_schema_refuses_what_the_model_refuses(change):
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    change(document["config"])
    assert violations(document) != []


def test_a_secret_key_takes_an_encrypted_value():
    document = yaml.safe_load((ROOT / "Pulumi.dr.yaml").read_text())
    document["encryptionsalt"] = "v1:c2FsdA==:v1:bm9uY2U=:Y3Q="
    document["config"]["raptorflow-dr:databaseUrl"] = {"secure": "v1:bm9uY2U=:Y3Q="}
    document["config"]["raptorflow-dr:vercelSecretValues"] = {"SUPABASE_SERVICE_ROLE_KEY": {
        "primary": {"secure": "v1:bm9uY2U=:Y3Q="}, "standby": {"secure": "v1:bm9uY2U=:Y3Q="}}}
    assert violations(document) == []
