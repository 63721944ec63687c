"""`python -m tools.secrets`: sets every missing secret of a stack through the Pulumi CLI, values on stdin only.

The Pulumi CLI cannot be installed on this machine (no download beyond the package registries), so the tests
that set values run against a stand-in `pulumi` on PATH - a test double, labelled as such below - that answers
what the Automation API asks (`version`, `stack ls --json`) and records each `config set` (argv and stdin),
writing a ciphertext of the passphrase provider's shape into the stack file as the CLI would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools.offline import ROOT

VALUES = ["postgresql://app:s3cr3t-one@db.example/app", "postgresql://app:s3cr3t-two@scratch/app",
          "xoxb-s3cr3t-three", "sk_live_s3cr3t_four", "re_s3cr3t_five"]

STAND_IN = '''#!{python}
# TEST STAND-IN for the Pulumi CLI: not Pulumi. Answers `version` and `stack ls --json`,
# records `config set` calls and writes a well-formed (not real) ciphertext into the stack file.
import base64, json, os, sys
import yaml
args = [a for a in sys.argv[1:] if a != "--non-interactive"]
log = os.environ["STAND_IN_LOG"]
if args == ["version"]:
    print("v3.272.0"); sys.exit(0)
if args[:2] == ["stack", "ls"]:
    print(json.dumps([{{"name": name, "current": False}} for name in os.environ["STAND_IN_STACKS"].split(",")]))
    sys.exit(0)
if args[:2] == ["config", "set"]:
    value = sys.stdin.read()
    with open(log, "a") as out:
        out.write(json.dumps({{"argv": args, "stdin": value}}) + "\\n")
    stack = args[args.index("--stack") + 1]
    path = [a for a in args[2:] if not a.startswith("--") and a != stack][0]
    stack_file = os.path.join(os.getcwd(), f"Pulumi.{{stack}}.yaml")
    document = yaml.safe_load(open(stack_file)) or {{}}
    document.setdefault("encryptionsalt", "v1:c2FsdHNhbHQ=:v1:bm9uY2VOT05DRTEy:Y2lwaGVydGV4dC1vZi1wdWx1bWk=")
    node = document.setdefault("config", {{}})
    top, *rest = path.split(".")
    key = "raptorflow-dr:" + top
    if rest:
        node = node.setdefault(key, {{}})
        for part in rest[:-1]:
            node = node.setdefault(part, {{}})
        key = rest[-1]
    sealed = base64.b64encode(os.urandom(len(value) + 16)).decode()
    node[key] = {{"secure": "v1:" + base64.b64encode(os.urandom(12)).decode() + ":" + sealed}}
    yaml.safe_dump(document, open(stack_file, "w"))
    sys.exit(0)
print("stand-in: unexpected " + " ".join(args), file=sys.stderr); sys.exit(9)
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repo's Pulumi.yaml and prod stack file, which the stand-in may change."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[str, str]:
    """Environment with the stand-in `pulumi` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cli = bin_dir / "pulumi"
    cli.write_text(STAND_IN.format(python=sys.executable))
    cli.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "STAND_IN_LOG": str(tmp_path / "calls.log"),
            "STAND_IN_STACKS": "prod"}


def run(project: Path, env: dict[str, str], stdin: str = "", *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.secrets", "prod", "--project-dir", str(project), *args],
                          cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=60)


def test_list_names_each_missing_secret_with_its_command(project):
    result = run(project, dict(os.environ), "", "--list")
    assert result.returncode == 1
    assert "stack prod lacks 5 secret(s):" in result.stdout
    assert "pulumi config set --secret --path --stack prod 'configVaultSecrets.STRIPE_SECRET_KEY'" in result.stdout


def test_without_the_cli_it_fails_in_one_line_and_sets_nothing(project):
    env = {**os.environ, "PATH": "/nonexistent"}
    result = run(project, env, "\n".join(VALUES) + "\n")
    assert result.returncode == 3
    assert result.stderr.strip() == ("error: the pulumi CLI is not on PATH (https://www.pulumi.com/docs/install/); "
                                     "nothing was set")


def test_sets_every_secret_on_stdin_never_in_argv_and_a_second_run_has_nothing_to_do(project, stand_in, tmp_path):
    result = run(project, stand_in, "\n".join(VALUES) + "\n")
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.log").read_text().splitlines()]
    assert [call["stdin"] for call in calls] == VALUES
    paths = ["databaseUrl", "scratchDatabaseUrl", "slackAuthToken", "configVaultSecrets.STRIPE_SECRET_KEY",
             "configVaultSecrets.RESEND_API_KEY"]
    assert [call["argv"] for call in calls] == [
        ["config", "set", "--secret", *(["--path"] if "." in path else []), path, "--stack", "prod"] for path in paths
    ], "the value never travels in argv (the stand-in drops --non-interactive)"
    assert not any(value in result.stdout + result.stderr for value in VALUES), "a secret was echoed"
    assert "secure:" in (project / "Pulumi.prod.yaml").read_text()

    again = run(project, stand_in, "")
    assert again.returncode == 0 and "stack prod: every secret it needs is set" in again.stdout
    assert len((tmp_path / "calls.log").read_text().splitlines()) == len(VALUES), "nothing is set twice"
    plan = subprocess.run([sys.executable, "-m", "tools.plan", "prod", "--stack-file", str(project / "Pulumi.prod.yaml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert plan.returncode == 0, plan.stderr
    assert "secrets not in the stack file" not in plan.stdout


def test_an_empty_answer_skips_a_key_and_exits_1(project, stand_in):
    result = run(project, stand_in, "\n".join(["", *VALUES[1:]]) + "\n")
    assert result.returncode == 1
    assert result.stderr.strip() == "stack prod: still missing databaseUrl"


def test_a_stack_the_backend_lacks_is_refused_before_any_prompt(project, stand_in, tmp_path):
    result = run(project, {**stand_in, "STAND_IN_STACKS": "dev"}, "\n".join(VALUES) + "\n")
    assert result.returncode == 3
    assert "the current backend has no stack 'prod'; create it with `pulumi stack init prod`" in result.stderr
    assert not (tmp_path / "calls.log").exists()


def test_an_invalid_stack_file_exits_2_naming_it(project):
    (project / "Pulumi.prod.yaml").write_text(textwrap.dedent("""\
        config:
          raptorflow-dr:site: primary
          raptorflow-dr:site: standby
        """))
    result = run(project, dict(os.environ), "", "--list")
    assert result.returncode == 2 and "duplicate key 'raptorflow-dr:site'" in result.stderr
