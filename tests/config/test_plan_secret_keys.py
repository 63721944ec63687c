"""Secret config keys hold `secure:` values only: plain text under one is refused, from the stack file or `--set`,
naming the key and the `pulumi config set --secret` command, never the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from components.config import secret_keys_of_model
from tools.offline import ROOT, apply_override, plan_stack
from tools.stack_files import StackFileError, read_stack_config

SALT = "v1:c2FsdHNhbHQ=:v1:bm9uY2VOT05DRTEy:Y2lwaGVydGV4dC1vZi1wdWx1bWk="
CIPHERTEXT = "v1:bm9uY2VOT05DRTEy:Y2lwaGVydGV4dC1uZXZlci1wcmludGVk"
SECRET_KEYS = sorted(secret_keys_of_model())


def _root(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text("name: raptorflow-dr\n")
    (folder / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"encryptionsalt": SALT, "config": config}))
    return folder


def _refusal(root: Path) -> str:
    """The plan's refusal of `root`'s prod stack file (before any program runs: `root` has none)."""
    with pytest.raises(StackFileError) as caught:
        plan_stack("prod", root=root)
    return str(caught.value)


@pytest.mark.parametrize("key", SECRET_KEYS)
@pytest.mark.parametrize("path", ["", ".NAME"], ids=["whole-key", "inside"])
def test_set_of_a_secret_key_is_refused_with_the_secret_command(key, path):
    values, secret_keys = read_stack_config("prod", ROOT)
    with pytest.raises(StackFileError) as caught:
        apply_override(values, f"raptorflow-dr:{key}{path}=plain-value-never-shown", secret_keys=secret_keys,
                       stack="prod")
    message = str(caught.value)
    assert message.startswith(f"--set: raptorflow-dr:{key} is a secret key"), message
    assert f"`pulumi config set --secret{' --path' if path else ''} --stack prod '{key}{path}'`" in message, message
    assert "plain-value-never-shown" not in message


def test_the_red_teams_plain_vault_secret_on_the_command_line_fails_the_plan(run_cli):
    # It planned (exit 0): the placeholder for the missing STRIPE_SECRET_KEY marked the whole map secret.
    result = run_cli("tools.plan", "prod", "--set", "raptorflow-dr:configVaultSecrets.RESEND_API_KEY=re_plain_1234")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: --set: raptorflow-dr:configVaultSecrets is a secret key")
    assert "pulumi config set --secret --path --stack prod 'configVaultSecrets.RESEND_API_KEY'" in result.stderr
    assert "re_plain_1234" not in result.stderr + result.stdout


def test_set_of_a_key_the_stack_file_keeps_secret_is_refused(stack_file):
    path = stack_file("dr", lambda config: config.update({"cloudflare:apiToken": {"secure": CIPHERTEXT}}),
                      encryptionsalt=SALT)
    values, secret_keys = read_stack_config("dr", ROOT, path)
    with pytest.raises(StackFileError, match=r"--set: cloudflare:apiToken is a secret key.*"
                                             r"`pulumi config set --secret --stack dr 'cloudflare:apiToken'`"):
        apply_override(values, "cloudflare:apiToken=plain-token", secret_keys=secret_keys, stack="dr")


def test_a_secret_map_all_in_plain_text_in_the_stack_file_is_refused(tmp_path):
    # Only a map with at least one secure: value was checked; all plain, the file passed (and the program's own
    # check named the keys with no stack and a namespaced path: `--path raptorflow-dr:configVaultSecrets...`).
    message = _refusal(_root(tmp_path, {"raptorflow-dr:configVaultSecrets": {
        "STRIPE_SECRET_KEY": "sk_live_plain", "RESEND_API_KEY": "re_plain"}}))
    for name in ("STRIPE_SECRET_KEY", "RESEND_API_KEY"):
        assert (f"raptorflow-dr:configVaultSecrets.{name}: is plain text inside the secret map "
                f"raptorflow-dr:configVaultSecrets; set it with "
                f"`pulumi config set --secret --path --stack prod 'configVaultSecrets.{name}'`") in message
    assert "sk_live_plain" not in message and "re_plain" not in message


def test_a_plain_secret_scalar_in_the_stack_file_is_refused(tmp_path):
    message = _refusal(_root(tmp_path, {"raptorflow-dr:databaseUrl": "postgresql://u:hunter2@db/prod"}))
    assert ("raptorflow-dr:databaseUrl: is plain text, not a `secure:` value, and holds a secret; set it with "
            "`pulumi config set --secret --stack prod 'databaseUrl'`") in message
    assert "hunter2" not in message


_PLAIN = st.one_of(
    st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=12, max_size=20).map(lambda t: f"plain{t}"),
    st.integers(10**12, 10**15),
)


@given(key=st.sampled_from(SECRET_KEYS), plain=_PLAIN, secure_siblings=st.integers(0, 2),
       depth=st.integers(0, 2), spelled_bare=st.booleans())
def test_plain_text_anywhere_under_a_secret_key_is_refused_and_never_shown(tmp_path_factory, key, plain,
                                                                           secure_siblings, depth, spelled_bare):
    value: Any = plain
    where = f"raptorflow-dr:{key}"
    for level in range(depth):  # the plain value `depth` maps down, next to `secure:` siblings
        value = {f"L{level}": value, **{f"S{i}": {"secure": CIPHERTEXT} for i in range(secure_siblings)}}
    for level in reversed(range(depth)):
        where += f".L{level}"
    root = _root(tmp_path_factory.getbasetemp() / "secrets", {key if spelled_bare else f"raptorflow-dr:{key}": value})
    message = _refusal(root)
    assert f"{where}: is plain text" in message, message
    assert str(plain) not in message
