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


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_the_repo_stack_files_follow_the_schema(stack):
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text()), schema)


@pytest.mark.parametrize("change", [
    lambda config: config.update({"raptorflow-dr:retentionDays": 30}),
    lambda config: config["raptorflow-dr:databaseBackup"].update(cpu="3"),
    lambda config: config.update({"raptorflow-dr:databaseUrl": {"secure": 5}}),
], ids=["unknown-key", "cpu-cloud-run-refuses", "secure-not-a-string"])
def test_the_schema_refuses_what_the_model_refuses(change):
    schema = json.loads(SCHEMA_PATH.read_text())
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    change(document["config"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_a_secret_key_takes_an_encrypted_value():
    schema = json.loads(SCHEMA_PATH.read_text())
    document = yaml.safe_load((ROOT / "Pulumi.dr.yaml").read_text())
    document["encryptionsalt"] = "v1:c2FsdA==:v1:bm9uY2U=:Y3Q="
    document["config"]["raptorflow-dr:databaseUrl"] = {"secure": "v1:bm9uY2U=:Y3Q="}
    document["config"]["raptorflow-dr:vercelSecretValues"] = {"SUPABASE_SERVICE_ROLE_KEY": {
        "primary": {"secure": "v1:bm9uY2U=:Y3Q="}, "standby": {"secure": "v1:bm9uY2U=:Y3Q="}}}
    jsonschema.validate(document, schema)
