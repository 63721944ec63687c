"""The per-site config model: the `primary` and `standby` sections are the one place that says which key belongs
to which site, schedules are a mapping by kind, and stack files in the layout before the sections keep working."""

from __future__ import annotations

import json
import logging

import pytest

from components.config import ConfigError, StackConfig, parse_stack_config
from components.config.legacy import flat_layout, migrated
from components.config.loading import own_values
from components.config.site_sections import SITE_SECTIONS
from components.config.storage import ReplicaSet
from components.defaults import BACKUP_SCHEDULES
from core.contracts import BUCKET_ROLES, BackupKind
from tools.offline import ROOT, plan_stack

FLAT = ROOT / "tests" / "fixtures" / "flat_layout"


def _comparable(plan) -> str:
    """A plan as JSON with its resources in URN order: registration order varies from run to run (resources
    waiting on the same API registered as their dependencies resolve), the resources and their inputs do not."""
    document = plan.to_json()
    document["resources"] = sorted(document["resources"], key=lambda resource: resource["urn"])
    return json.dumps(document, sort_keys=True)


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_the_stack_files_before_the_sections_plan_exactly_what_the_migrated_ones_do(stack, caplog):
    # The fixtures are the repo's stack files as they were, flat; the repo's own are migrated.
    flat_text = (FLAT / f"Pulumi.{stack}.yaml").read_text()
    assert "  raptorflow-dr:primary:" not in flat_text and "  raptorflow-dr:standby:" not in flat_text
    with caplog.at_level(logging.WARNING):
        before = plan_stack(stack, stack_file=FLAT / f"Pulumi.{stack}.yaml")
    after = plan_stack(stack)
    assert len(after.resources) > 50
    assert _comparable(before) == _comparable(after)
    warned = [record.getMessage() for record in caplog.records if "layout before per-site sections" in record.getMessage()]
    section = "primary" if stack == "prod" else "standby"
    assert warned and f"-> {section}." in warned[0], "the flat layout is named, with where each key moves"


def test_each_site_key_lives_in_exactly_one_place():
    top = {field.alias for field in StackConfig.model_fields.values()}
    primary, standby = ({field.alias for field in model.model_fields.values()} for model in SITE_SECTIONS.values())
    assert set(SITE_SECTIONS) <= top
    assert not primary & standby and not (primary | standby) & top
    assert {"userFilesBucket", "standbyRegion", "databaseDumps", "configVault"} <= primary
    assert {"prodStack", "replicas", "failover", "vercel"} <= standby


def test_each_bucket_role_has_its_copy_under_the_roles_config_key():
    assert {field.alias for field in ReplicaSet.model_fields.values()} == {role.config_key for role in BUCKET_ROLES}
    replicas = ReplicaSet()
    for role in BUCKET_ROLES:
        assert replicas.of(role) is getattr(replicas, next(
            name for name, field in ReplicaSet.model_fields.items() if field.alias == role.config_key))


def _values(stack: str, edit=None) -> dict:
    import yaml

    values = {key: (json.dumps(value) if isinstance(value, (dict, list)) else value)
              for key, value in yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"].items()}
    if edit:
        edit(values)
    return values


@pytest.mark.parametrize("stack, section, key, owner", [
    ("prod", "primary", "prodStack", "standby"),
    ("dr", "standby", "userFilesBucket", "primary"),
])
def test_a_key_of_the_other_site_is_named_with_its_place(stack, section, key, owner):
    def edit(values):
        own = json.loads(values[f"raptorflow-dr:{section}"])
        values[f"raptorflow-dr:{section}"] = json.dumps({**own, key: "x"})
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(stack, _values(stack, edit))
    assert f"raptorflow-dr:{section}.{key}: belongs to the `{owner}` section of a {owner} stack" in str(caught.value)


def test_a_section_on_the_wrong_site_is_refused():
    def edit(values):
        values["raptorflow-dr:standby"] = json.dumps({"prodStack": "acme/raptorflow-dr/prod"})
    with pytest.raises(ConfigError, match=r"`standby\.prodStack` belong to a standby stack; a primary stack must not set them"):
        parse_stack_config("prod", _values("prod", edit))


@pytest.mark.parametrize("override, expected", [
    # A primary key on the standby, flat or in a section: named as written, not as a missing field of a section.
    ("raptorflow-dr:userFilesBucket=some-bucket", "`primary.userFilesBucket` belong to a primary stack; a standby "
                                                  "stack must not set them"),
    ("raptorflow-dr:primary.standbyRegion=us-central1", "`primary.standbyRegion` belong to a primary stack"),
    # A path of the old layout on a stack file in the new one: the --set is named as a cause.
    ("raptorflow-dr:failover.domain=example.com", "`failover` is set twice: at the top level (the layout before "
                                                  "per-site sections) and under `standby`"),
])
def test_what_is_in_the_wrong_place_is_named_as_written(run_cli, override, expected):
    result = run_cli("tools.plan", "dr", "--set", override)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert expected in result.stderr, result.stderr
    if "set twice" in expected:
        assert "a `--set` path counts too" in result.stderr


def test_an_unreadable_old_schedule_list_is_a_config_error_not_a_crash(stack_file, run_cli):
    path = stack_file("prod", lambda c: c["raptorflow-dr:databaseBackup"].update(
        schedules=[{"kind": ["full"], "cron": "0 2 * * *"}]))
    result = run_cli("tools.plan", "prod", "--stack-file", str(path))
    assert result.returncode == 2 and "Traceback" not in result.stderr and "program error" not in result.stderr
    assert "raptorflow-dr:databaseBackup.schedules" in result.stderr, result.stderr


def test_a_key_in_both_layouts_is_refused_rather_than_guessed():
    def edit(values):
        values["raptorflow-dr:userFilesBucket"] = "another-bucket"
    with pytest.raises(ConfigError, match=r"`userFilesBucket` is set twice: at the top level .* keep `primary.userFilesBucket`"):
        parse_stack_config("prod", _values("prod", edit))


def test_overriding_one_schedule_keeps_the_other(make_plan):
    plan = make_plan("prod", "raptorflow-dr:databaseBackup.schedules.full=15 1 * * *")
    schedules = {r.name: r.inputs["schedule"] for r in plan.of_type("gcp:cloudscheduler/job:Job")}
    assert schedules["db-backup-full-schedule"] == "15 1 * * *"
    assert schedules["db-backup-schema-schedule"] == BACKUP_SCHEDULES[BackupKind.SCHEMA]


def test_the_old_schedule_list_becomes_the_mapping_and_a_missing_kind_takes_its_default():
    data = {"databaseBackup": {"schedules": [{"kind": "full", "cron": "15 1 * * *"}]}}
    assert migrated(data)["databaseBackup"]["schedules"] == {"full": "15 1 * * *"}
    assert flat_layout(data) == ["databaseBackup.schedules (a list) -> databaseBackup.schedules.KIND (a mapping by kind)"]
    own = own_values(_values("prod"))
    config = StackConfig.model_validate({**own, "databaseBackup": {**own["databaseBackup"], **data["databaseBackup"]}})
    assert config.database_backup is not None
    assert [(entry.kind, entry.cron) for entry in config.database_backup.schedules.entries()] == [
        ("full", "15 1 * * *"), ("schema", BACKUP_SCHEDULES[BackupKind.SCHEMA])]
    with pytest.raises(ValueError, match="lists the kind 'full' twice"):
        migrated({"databaseBackup": {"schedules": [{"kind": "full", "cron": "0 1 * * *"}] * 2}})
