"""The config reference is generated from the config model: the committed JSON Schema and README tables match it,
the schema accepts the repo's stack files and refuses what the model refuses, and every key is documented."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from components.config import StackConfig
from core.alerts import runbook
from tools.config_reference import README_PATH, SCHEMA_PATH, _readme_with_tables, main, markdown_tables, rendered
from tools.offline import ROOT


def test_the_committed_schema_matches_the_model(capsys):
    assert SCHEMA_PATH.read_text() == rendered(), "run `python -m tools.config_reference` and commit the schema"
    assert main(["--check"]) == 0


def test_the_readme_tables_match_the_model():
    readme = README_PATH.read_text()
    assert readme == _readme_with_tables(readme), "run `python -m tools.config_reference` and commit README.md"


def test_the_check_fails_when_the_readme_drifts(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "README.md"
    stale.write_text(README_PATH.read_text().replace("| `retentionDays` | integer, 1-36525 | `30` |",
                                                      "| `retentionDays` | integer, 1-36525 | `31` |", 1))
    monkeypatch.setattr("tools.config_reference.README_PATH", stale)
    monkeypatch.setattr("tools.config_reference.ROOT", tmp_path)
    monkeypatch.setattr("tools.config_reference.SCHEMA_PATH", tmp_path / "schema.json")
    monkeypatch.setattr("tools.config_reference.RUNBOOK_PATH", tmp_path / "alerts.md")
    (tmp_path / "alerts.md").write_text(runbook())
    (tmp_path / "schema.json").write_text(rendered())
    assert main(["--check"]) == 1
    assert "README.md differs from its source" in capsys.readouterr().err


def test_every_key_of_every_section_is_in_the_tables_with_its_meaning():
    tables = markdown_tables()
    for name, field in StackConfig.model_fields.items():
        assert f"| `{field.alias or name}` |" in tables
        assert field.description, f"{field.alias} has no description"
    assert "| meaning |" in tables and " |  |" not in tables, "a key without a description"


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
