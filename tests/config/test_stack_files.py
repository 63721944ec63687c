"""The offline plan reads stack files as the Pulumi CLI does, and refuses what `pulumi preview` would refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.config.loading import restated_defaults
from components.defaults import BACKUP_SCHEDULES
from core.contracts import BackupKind
from tools.offline import ROOT
from tools.stack_files import (
    ProjectConfig,
    StackFileError,
    ciphertext_problem,
    read_stack_config,
    secrets_provider,
    secure_leaves,
)


def _project(tmp_path: Path, config: dict) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "raptorflow-dr", "config": config}))
    return tmp_path


def test_repo_pulumi_yaml_requires_nothing_a_stack_does_not_set():
    project = ProjectConfig(ROOT / "Pulumi.yaml")
    for stack in ("prod", "dr"):
        values, _ = read_stack_config(stack, ROOT)
        assert project.problems(stack, values) == [], f"the CLI would refuse stack {stack}"


def test_repo_stack_files_hold_no_ciphertext_their_provider_cannot_decrypt():
    # A team's own stack files gain real ciphertexts (python -m tools.secrets); a placeholder never passes.
    for stack in ("prod", "dr"):
        document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        provider = secrets_provider(document)
        for key, value in document["config"].items():
            for where, ciphertext in secure_leaves(value, key):
                assert ciphertext_problem(provider, ciphertext) is None, f"Pulumi.{stack}.yaml {where}"


def test_a_typed_key_without_default_is_required_in_every_stack(tmp_path):
    # Pulumi's own test expects "Stack 'dev' is missing configuration value 'values'".
    root = _project(tmp_path, {"prodStack": {"type": "string"}, "site": {"type": "string"}})
    (root / "Pulumi.prod.yaml").write_text("config:\n  raptorflow-dr:site: primary\n")
    with pytest.raises(StackFileError, match=r"Stack 'prod' is missing configuration value 'prodStack'"):
        read_stack_config("prod", root)


def test_a_value_of_the_wrong_declared_type_is_refused(tmp_path):
    root = _project(tmp_path, {"promoted": {"type": "boolean", "default": False}})
    (root / "Pulumi.dr.yaml").write_text("config:\n  raptorflow-dr:promoted: 'true'\n")
    assert read_stack_config("dr", root)[0]["raptorflow-dr:promoted"] == "true", "the CLI stores scalars as strings"
    (root / "Pulumi.dr.yaml").write_text("config:\n  raptorflow-dr:promoted: 'yes'\n")
    with pytest.raises(StackFileError, match="configuration key 'promoted' must be of type 'boolean'"):
        read_stack_config("dr", root)


def test_only_the_projects_own_keys_may_declare_a_type(tmp_path):
    root = _project(tmp_path, {"gcp:project": {"type": "string"}})
    (root / "Pulumi.dr.yaml").write_text("config: {}\n")
    with pytest.raises(StackFileError, match="'gcp:project' is not namespaced by the project and should not define"):
        read_stack_config("dr", root)


@pytest.mark.parametrize("text, reason", [
    ("config:\n  raptorflow-dr:site: primary\n  raptorflow-dr:site: standby\n", "duplicate key 'raptorflow-dr:site'"),
    ("config:\n  a: &x [1, 2]\n  b: *x\n", "aliases"),
    ("- just\n- a list\n", "mapping at the top"),
    ("config: [1, 2]\n", "`config:` must be a mapping"),
    ("config:\n  1: 2\n", "keys must be strings"),
], ids=["duplicate-key", "alias", "top-level-list", "config-list", "integer-key"])
def test_malformed_stack_files_are_refused_naming_the_file(tmp_path, text, reason):
    root = _project(tmp_path, {})
    (root / "Pulumi.dr.yaml").write_text(text)
    with pytest.raises(StackFileError) as caught:
        read_stack_config("dr", root)
    assert "Pulumi.dr.yaml" in str(caught.value) and reason in str(caught.value)


def test_non_utf8_stack_file_is_refused(tmp_path):
    root = _project(tmp_path, {})
    (root / "Pulumi.dr.yaml").write_bytes("config:\n  raptorflow-dr:site: standby\n".encode("utf-16"))
    with pytest.raises(StackFileError, match=r"Pulumi\.dr\.yaml is not UTF-8"):
        read_stack_config("dr", root)


PLACEHOLDER = "v1:cGxhY2Vob2xkZXI=:c2V0LXdpdGgtcHVsdW1pLWNvbmZpZy1zZXQtLXNlY3JldA=="
NONCE, SEALED = "bm9uY2VOT05DRTEy", "Y2lwaGVydGV4dC1uZXZlci1wcmludGVk"


@pytest.mark.parametrize("provider, value, problem", [
    ("service", PLACEHOLDER, "names no secrets provider"),
    ("passphrase", PLACEHOLDER, "nonce is not 12"),
    ("passphrase", f"v1:{NONCE}:c2hvcnQ=", "AES-GCM tag"),
    ("passphrase", f"{NONCE}:{SEALED}", "not of the form"),
    ("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", f"v1:{NONCE}:{SEALED}", None),
    ("passphrase", f"v1:{NONCE}:{SEALED}", None),
    ("service", "AAAAAQIDBAUGBwgJCgsMDQ4PEA==", None),
], ids=["placeholder-no-provider", "placeholder-passphrase", "short-ciphertext", "no-version", "kms-ok",
        "passphrase-ok", "service-ok"])
def test_ciphertexts_must_have_their_providers_shape(provider, value, problem):
    found = ciphertext_problem(provider, value)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_undecryptable_secure_value_fails_the_offline_plan_with_the_key(run_cli, stack_file):
    path = stack_file("prod", lambda config: config.update({"raptorflow-dr:databaseUrl": {"secure": PLACEHOLDER}}))
    result = run_cli("tools.plan", "prod", "--stack-file", str(path))
    assert result.returncode == 2
    assert "raptorflow-dr:databaseUrl: the `secure:` value cannot be decrypted" in result.stderr
    assert "Traceback" not in result.stderr and PLACEHOLDER not in result.stderr


def _own_keys(stack_file: Path) -> dict:
    config = yaml.safe_load(stack_file.read_text())["config"]
    return {key.partition(":")[2]: value for key, value in config.items() if key.startswith("raptorflow-dr:")}


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_the_repo_stack_files_set_only_what_differs_from_the_defaults(stack):
    declared = set(yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"])
    assert restated_defaults(_own_keys(ROOT / f"Pulumi.{stack}.yaml"), declared) == [], (
        "a default restated in a stack file is a second copy of it: remove the key")


def test_a_restated_default_is_found_down_to_list_entries(tmp_path):
    own = _own_keys(ROOT / "Pulumi.dr.yaml")
    own["monitoring"] = {**own["monitoring"], "backupAgeMarginHours": 6}
    own["standby"]["failover"]["hostnames"][0]["proxied"] = True
    own["databaseBackup"]["schedules"] = {"full": BACKUP_SCHEDULES[BackupKind.FULL]}
    assert restated_defaults(own, {"site", "promoted"}) == [
        "standby.failover.hostnames.0.proxied", "databaseBackup.schedules.full", "monitoring.backupAgeMarginHours"]
