"""Operator mistakes in stack files and --set: a clear error naming file and key, never a traceback or a secret."""

from __future__ import annotations

import gc

import pytest
import yaml

from components.config import ConfigError, parse_stack_config
from tools.offline import ROOT, apply_override, plan_stack, set_config_path, supply_missing_secrets
from tools.stack_files import StackFileError, read_stack_config


def _values(stack: str = "prod"):
    values, secret_keys = read_stack_config(stack, ROOT)
    supply_missing_secrets(stack, values, secret_keys)
    return values, secret_keys


def _error(stack: str, change) -> str:
    values, secret_keys = _values(stack)
    change(values, secret_keys)
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(stack, values, secret_keys)
    return str(caught.value)


def test_a_secret_keys_bad_value_is_never_echoed():
    token = "xoxb-sk_live_do-not-print-me"

    def change(values, secret_keys):
        values["raptorflow-dr:slackAuthToken"] = {"nested": token}
    message = _error("prod", change)
    assert "raptorflow-dr:slackAuthToken" in message and token not in message


def test_a_long_value_is_echoed_cut_short():
    def change(values, secret_keys):
        values["raptorflow-dr:primary"].setdefault("databaseDumps", {})["retentionDays"] = "9" * 5_000_000
    message = _error("prod", change)
    assert "raptorflow-dr:primary.databaseDumps.retentionDays" in message and len(message) < 1_000


@pytest.mark.parametrize("path, value, expected", [
    ("primary.databaseDumps.retentionDays", True, "Input should be a valid integer (got True)"),
    ("primary.databaseDumps.retentionDays", 36_526, "less than or equal to 36525"),
    ("primary.userFilesBucket", "goog-user-files", "refuses bucket names that start with 'goog'"),
    ("labels.team", "a" * 64, "value is 64 characters; Google Cloud allows at most 63"),
    ("databaseBackup.objectPrefix", "../..", "is not an object prefix"),
], ids=["bool-as-days", "retention-beyond-100-years", "goog-bucket", "64-char-label", "dotdot-prefix"])
def test_values_cloud_storage_refuses_are_refused_with_the_reason(path, value, expected):
    def change(values, secret_keys):
        top, *rest = path.split(".")
        set_config_path(values, [f"raptorflow-dr:{top}", *rest], value, path)
    message = _error("prod", change)
    assert f"raptorflow-dr:{path.split('.')[0]}" in message and expected in message, message


def test_an_unknown_key_inside_a_map_value_names_what_that_value_allows():
    def change(values, secret_keys):
        values["raptorflow-dr:standby"]["vercel"]["variables"]["STORAGE_BUCKET"]["secondary"] = "x"
    message = _error("dr", change)
    assert ("raptorflow-dr:standby.vercel.variables.STORAGE_BUCKET.secondary: is not a known key; allowed here: primary, "
            "standby") in message


def test_a_plain_value_inside_a_secret_map_is_refused(tmp_path):
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["encryptionsalt"] = "v1:c2FsdHNhbHQ=:v1:bm9uY2VOT05DRTEy:Y2lwaGVydGV4dC1vZi1wdWx1bWk="
    document["config"]["raptorflow-dr:configVaultSecrets"] = {
        "STRIPE_SECRET_KEY": {"secure": "v1:bm9uY2VOT05DRTEy:Y2lwaGVydGV4dC1uZXZlci1wcmludGVk"},
        "RESEND_API_KEY": "re_plain_text_key",
    }
    path = tmp_path / "Pulumi.prod.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(StackFileError) as caught:
        read_stack_config("prod", ROOT, path)
    message = str(caught.value)
    assert "raptorflow-dr:configVaultSecrets.RESEND_API_KEY: is plain text inside the secret map" in message
    assert "re_plain_text_key" not in message


@pytest.mark.parametrize("assignment, expected", [
    ("raptorflow-dr:gcp.project.name=x", "raptorflow-dr:gcp.project is a str"),
    ("raptorflow-dr:databaseUrl.part=x", "raptorflow-dr:databaseUrl is a secret"),
    ("raptorflow-dr:primary.configVault.settings[7].name=X", "has 3 items; index 7 is past the end"),
    ("raptorflow-dr:a..b=1", "is not a config path"),
    ("promoted=true", "--set takes NAMESPACE:KEY=VALUE"),
    ("raptorflow-dr:labels" + ".a" * 2000 + "=1", "goes 2001 levels deep; config nests at most 64"),
], ids=["into-a-string", "into-a-secret", "past-the-end", "empty-part", "no-namespace", "2000-levels"])
def test_set_paths_that_cannot_apply_are_refused(assignment, expected):
    values, _ = _values("prod")
    with pytest.raises(StackFileError, match=expected.replace("[", r"\[").replace(".", r"\.")):
        apply_override(values, assignment)


def test_set_addresses_list_elements_like_config_set_path():
    values, _ = _values("prod")
    apply_override(values, "raptorflow-dr:primary.configVault.settings[1].name=STRIPE_API_KEY")
    apply_override(values, "raptorflow-dr:monitoring.backupAgeMarginHours=--5")
    assert values["raptorflow-dr:primary"]["configVault"]["settings"][1]["name"] == "STRIPE_API_KEY"
    assert values["raptorflow-dr:monitoring"]["backupAgeMarginHours"] == "--5", "not a number, so a string"


def test_a_bad_cron_is_one_error_line(run_cli):
    result = run_cli("tools.plan", "prod", "--set", "raptorflow-dr:databaseBackup.restoreCheck.cron=bad")
    assert result.returncode == 2
    assert len([line for line in result.stderr.splitlines() if line.startswith("  raptorflow-dr:")]) == 1


def test_stack_file_errors_name_the_file_given(run_cli, stack_file):
    path = stack_file("prod", lambda config: config["raptorflow-dr:primary"].setdefault("databaseDumps", {}).update(
        retentionDays=0))
    result = run_cli("tools.plan", "prod", "--stack-file", str(path))
    assert result.returncode == 2 and f"invalid stack config in {path}" in result.stderr


def test_a_failed_plan_leaves_no_event_loop_open():
    # An unclosed loop collected at interpreter exit printed "Exception ignored in BaseEventLoop.__del__".
    import asyncio

    def open_loops() -> set[int]:
        gc.collect()
        return {id(obj) for obj in gc.get_objects()
                if isinstance(obj, asyncio.AbstractEventLoop) and not obj.is_closed()}

    before = open_loops()
    with pytest.raises(ConfigError):
        plan_stack("prod", ("raptorflow-dr:primary.databaseDumps.retentionDays=0",))
    plan_stack("prod", ("raptorflow-dr:primary.databaseDumps.retentionDays=31",))
    assert open_loops() <= before, "a plan left an event loop open"
