"""Invalid stack config fails before any resource exists, through the CLI, with file, key and what is allowed."""

from __future__ import annotations

import pytest

from components.config import ConfigError, parse_stack_config


def _set(path: str, value):
    def edit(config: dict) -> None:
        top, *rest = path.split(".")
        if not rest:
            config[top] = value
            return
        node = config.setdefault(top, {})
        for part in rest[:-1]:
            node = node.setdefault(part, {})
        node[rest[-1]] = value

    return edit


def _drop(key: str):
    return lambda config: config.pop(key)


BAD_CONFIGS = [
    pytest.param(
        "prod", _set("raptorflow-dr:retentionDays", 30),
        "raptorflow-dr:retentionDays: is not a known key; allowed here:", id="unknown-key",
    ),
    pytest.param(
        "dr", _set("raptorflow-dr:standby.replicas.userFiles.retentionDays", "ninety"),
        "raptorflow-dr:standby.replicas.userFiles.retentionDays: Input should be a valid integer", id="wrong-type",
    ),
    pytest.param(
        "prod", _set("raptorflow-dr:primary.databaseDumps.retentionDays", 0),
        "raptorflow-dr:primary.databaseDumps.retentionDays: Input should be greater than or equal to 1 (got 0)",
        id="retention-below-one-day",
    ),
    pytest.param(
        "dr", _set("raptorflow-dr:gcp.region", "europe-west99"),
        "raptorflow-dr:gcp.region: 'europe-west99' is not a Google Cloud region; did you mean", id="bad-region",
    ),
    pytest.param(
        "dr", _drop("raptorflow-dr:standby"),
        "a standby stack needs its `standby` section (at least `standby.prodStack`)", id="dr-without-prod-reference",
    ),
    pytest.param(
        "prod", _set("raptorflow-dr:promoted", True),
        "`promoted` belongs to a standby stack", id="primary-promoted",
    ),
    pytest.param(
        "prod", _set("raptorflow-dr:site", "secondary"),
        "raptorflow-dr:site: Input should be 'primary' or 'standby' (got 'secondary')", id="bad-site",
    ),
    pytest.param(
        "dr", _set("raptorflow-dr:kms.rotationDays", 365),
        "raptorflow-dr:kms.rotationDays: Input should be less than or equal to 90 (got 365)", id="slow-rotation",
    ),
    pytest.param(
        "dr", _set("raptorflow-dr:standby.replicas.databaseDumps.softDeleteDays", 3),
        "softDeleteDays: Input should be greater than or equal to 7 (got 3)", id="soft-delete-too-short",
    ),
    pytest.param(
        "dr", _set("raptorflow-dr:standby.replicas.databaseDumps.transfer.startTimeUtc", "2am"),
        "'2am' is not a time of day; use HH:MM", id="bad-start-time",
    ),
    pytest.param(
        "prod", _set("raptorflow-dr:labels", {"team": "platform"}),
        "an `environment` label is required", id="missing-environment-label",
    ),
    pytest.param(
        "prod", _set("raptorflow:site", "primary"),
        "raptorflow:site: unknown namespace 'raptorflow'", id="misspelled-namespace",
    ),
]


@pytest.mark.parametrize("stack, edit, expected", BAD_CONFIGS)
def test_invalid_config_names_file_key_and_rule_and_exits_2(run_cli, stack_file, stack, edit, expected):
    path = stack_file(stack, edit)
    result = run_cli("tools.plan", stack, "--stack-file", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"invalid stack config in {path}" in result.stderr, "the error names the file that was read"
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_the_rotation_journal_tools_rotate_leaves_in_a_stack_file_is_no_config_error(run_cli, stack_file):
    """tools.rotate keeps its journal in the stack's config (`rotation:` keys) and leaves its incident and last
    step there after a rotation: the program, the plan and tools.failover still read that stack file."""
    from tools import rotate_config

    journal = {rotate_config.INCIDENT: "2026-12-03", rotate_config.STEP: "done",
               rotate_config.ROLLED: "dr/raptorflow-dr:cloudflareApiToken"}
    path = stack_file("dr", lambda config: config.update(journal))
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(key.partition(":")[0] == rotate_config.NAMESPACE for key in journal)


def test_several_problems_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        parse_stack_config("prod", {"raptorflow-dr:site": "primary", "raptorflow-dr:bogus": "1"})
    message = str(caught.value)
    for key in ("raptorflow-dr:gcp: Field required", "raptorflow-dr:labels: Field required", "raptorflow-dr:bogus"):
        assert key in message


def test_override_on_the_command_line_is_validated_too(run_cli):
    result = run_cli("tools.plan", "dr", "--set", "raptorflow-dr:standby.replicas.databaseDumps.retentionDays=0")
    assert result.returncode == 2
    assert "raptorflow-dr:standby.replicas.databaseDumps.retentionDays" in result.stderr


def test_unknown_stack_names_the_stacks_there_are(run_cli):
    result = run_cli("tools.plan", "staging")
    assert result.returncode == 2
    assert "no stack file Pulumi.staging.yaml; stacks here: dr, prod" in result.stderr


def test_malformed_override_is_explained(run_cli):
    result = run_cli("tools.plan", "dr", "--set", "promoted")
    assert result.returncode == 2 and "--set takes NAMESPACE:KEY=VALUE" in result.stderr


def test_missing_secrets_fail_once_listing_the_command_for_each():
    from tools.offline import ROOT
    from tools.stack_files import read_stack_config

    values, secret_keys = read_stack_config("dr", ROOT)
    with pytest.raises(ConfigError) as caught:
        parse_stack_config("dr", values, secret_keys)
    message = str(caught.value)
    assert message.count("invalid stack config in Pulumi.dr.yaml") == 1
    assert "stack dr lacks 6 secret(s); set all at once with `python -m tools.secrets dr`" in message
    for command in (
        "pulumi config set --secret --stack dr 'databaseUrl'",
        "pulumi config set --secret --stack dr 'scratchDatabaseUrl'",
        "pulumi config set --secret --stack dr 'cloudflareExportToken'",
        "pulumi config set --secret --stack dr 'slackAuthToken'",
        "pulumi config set --secret --path --stack dr 'vercelSecretValues.SUPABASE_SERVICE_ROLE_KEY.primary'",
        "pulumi config set --secret --path --stack dr 'vercelSecretValues.SUPABASE_SERVICE_ROLE_KEY.standby'",
    ):
        assert command in message, f"{command} missing from:\n{message}"


def test_a_new_secret_setting_is_one_more_missing_secret_not_a_mismatch():
    from components.config import missing_secrets
    from tools.offline import ROOT
    from tools.stack_files import read_stack_config

    values, _ = read_stack_config("prod", ROOT)
    values["raptorflow-dr:primary"]["configVault"]["settings"].append({"name": "NEW_KEY"})
    assert "configVaultSecrets.NEW_KEY" in [secret.path for secret in missing_secrets(values)]


def test_a_secret_value_for_an_undeclared_setting_is_refused():
    from tools.offline import ROOT, supply_missing_secrets
    from tools.stack_files import read_stack_config

    values, secret_keys = read_stack_config("prod", ROOT)
    supply_missing_secrets("prod", values, secret_keys)
    values["raptorflow-dr:configVaultSecrets"]["OLD_KEY"] = "[secret]"
    with pytest.raises(ConfigError, match=r"`configVaultSecrets` has values for \['OLD_KEY'\]"):
        parse_stack_config("prod", values, secret_keys)
