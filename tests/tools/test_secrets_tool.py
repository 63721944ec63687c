"""`python -m tools.secrets`: sets every missing secret of a stack through the Pulumi CLI, values on stdin only.

The Pulumi CLI cannot be installed on this machine (no download beyond the package registries), so the tests
that set values run against a labelled stand-in `pulumi` on PATH (tests/pulumi_stand_in.py) that answers what
the Automation API asks and records each `config set` (argv and stdin), writing a ciphertext of the passphrase
provider's shape into the stack file as the CLI would. Tests that need the CLI to misbehave (slow to set a value,
or saying it set one it did not store) put a labelled wrapper of that stand-in first on PATH (`wrapped`).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml

from tests.pulumi_stand_in import calls, install
from tools.offline import ROOT

VALUES = ["postgresql://app:s3cr3t-one@db.example/app", "postgresql://app:s3cr3t-two@scratch/app",
          "xoxb-s3cr3t-three", "sk_live_s3cr3t_four", "re_s3cr3t_five"]



@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repo's Pulumi.yaml and prod stack file, which the stand-in may change."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def stand_in(tmp_path: Path) -> dict[str, str]:
    """Environment with the stand-in `pulumi` first on PATH (tests/pulumi_stand_in.py)."""
    return install(tmp_path, "prod")


def run(project: Path, env: dict[str, str], stdin: str = "", *args: str) -> subprocess.CompletedProcess:
    """`python -m tools.secrets prod ARGS` as `main`, in this process, with `env` as its whole environment and `stdin`
    piped in: the same code without a second interpreter for every case. The SIGTERM tests below start the command
    as its own process."""
    from tools.secrets import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env, clear=True), mock.patch.object(sys, "stdin", io.StringIO(stdin)), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["prod", "--project-dir", str(project), *args])
    return subprocess.CompletedProcess(["tools.secrets", "prod", *args], code, out.getvalue(), err.getvalue())


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


def test_sets_every_secret_on_stdin_never_in_argv_and_a_second_run_has_nothing_to_do(project, stand_in, tmp_path,
                                                                                     run_cli):
    result = run(project, stand_in, "\n".join(VALUES) + "\n")
    assert result.returncode == 0, result.stderr
    sets = [call for call in calls(tmp_path) if call["argv"][:2] == ["config", "set"]]
    assert [call["stdin"] for call in sets] == VALUES
    paths = ["databaseUrl", "scratchDatabaseUrl", "slackAuthToken", "configVaultSecrets.STRIPE_SECRET_KEY",
             "configVaultSecrets.RESEND_API_KEY"]
    assert [call["argv"] for call in sets] == [
        ["config", "set", "--secret", *(["--path"] if "." in path else []), path, "--stack", "prod"] for path in paths
    ], "the value never travels in argv (the stand-in drops --non-interactive)"
    assert not any(value in result.stdout + result.stderr for value in VALUES), "a secret was echoed"
    assert "secure:" in (project / "Pulumi.prod.yaml").read_text()

    again = run(project, stand_in, "")
    assert again.returncode == 0 and "stack prod: every secret it needs is set" in again.stdout
    assert len([c for c in calls(tmp_path) if c["argv"][:2] == ["config", "set"]]) == len(VALUES), "nothing twice"
    plan = run_cli("tools.plan", "prod", "--stack-file", str(project / "Pulumi.prod.yaml"))
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
    assert not [c for c in calls(tmp_path) if c["argv"][:2] == ["config", "set"]]


def test_an_invalid_stack_file_exits_2_naming_it(project):
    (project / "Pulumi.prod.yaml").write_text(textwrap.dedent("""\
        config:
          raptorflow-dr:site: primary
          raptorflow-dr:site: standby
        """))
    result = run(project, dict(os.environ), "", "--list")
    assert result.returncode == 2 and "duplicate key 'raptorflow-dr:site'" in result.stderr


def set_calls(folder: Path) -> list[dict]:
    """The `pulumi config set` calls the stand-in recorded, in order."""
    return [call for call in calls(folder) if call["argv"][:2] == ["config", "set"]]


def test_values_piped_from_a_windows_file_lose_their_crlf_and_bom(project, stand_in, tmp_path):
    # Notepad's UTF-8: a byte-order mark first, CRLF line ends; the secret is the text between them.
    result = run(project, stand_in, "\ufeff" + "\r\n".join(VALUES) + "\r\n")
    assert result.returncode == 0, result.stderr
    assert [call["stdin"] for call in set_calls(tmp_path)] == VALUES



PLAIN = {"databaseUrl": "postgresql://app:pl41n-t3xt@db.example/app", "STRIPE_SECRET_KEY": "sk_live_pl41n_t3xt"}


def with_plain_secrets(project: Path) -> Path:
    """The prod stack file with two secrets written in plain text: a top-level key, and a key of a secret map
    that holds no ciphertext (the stack file reader refuses a plain key only beside `secure:` ones)."""
    stack_file = project / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text()
                          + f"  raptorflow-dr:databaseUrl: {PLAIN['databaseUrl']}\n"
                          + f"  raptorflow-dr:configVaultSecrets:\n    STRIPE_SECRET_KEY: {PLAIN['STRIPE_SECRET_KEY']}\n")
    return stack_file


PLAIN_COMMANDS = ["pulumi config set --secret --stack prod 'databaseUrl'",
                  "pulumi config set --secret --path --stack prod 'configVaultSecrets.STRIPE_SECRET_KEY'"]


@pytest.mark.parametrize("args", [["--list"], []], ids=["list", "set"])
def test_a_secret_in_plain_text_does_not_count_as_set_it_is_named_with_its_command_and_never_printed(
        project, stand_in, tmp_path, args):
    stack_file = with_plain_secrets(project)
    before = stack_file.read_text()
    result = run(project, stand_in, "\n".join(VALUES) + "\n", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "", "nothing is listed as missing, nothing is set"
    assert "plain text" in result.stderr
    for command in PLAIN_COMMANDS:
        assert command in result.stderr, f"what to do about it: {command}"
    assert not any(value in result.stdout + result.stderr for value in PLAIN.values()), "a plain secret was printed"
    assert set_calls(tmp_path) == [] and stack_file.read_text() == before, "refused before anything is asked or set"


def test_an_invalid_config_exits_2_instead_of_saying_every_secret_is_set(project):
    stack_file = project / "Pulumi.prod.yaml"
    stack_file.write_text(stack_file.read_text() + "  raptorflow-dr:databaseUrls: postgresql://typo@db/app\n")
    result = run(project, dict(os.environ), "", "--list")
    assert result.returncode == 2
    assert "raptorflow-dr:databaseUrls: is not a known key" in result.stderr
    assert "every secret it needs is set" not in result.stdout


WRAPPER = '''#!{python}
# A TEST STAND-IN for the Pulumi CLI (tests/tools/test_secrets_tool.py), not Pulumi: it runs the test's own
# lines first, then hands the call to the stand-in of tests/pulumi_stand_in.py.
import os, sys, time
args = sys.argv[1:]
{before}
os.execv({stand_in!r}, [{stand_in!r}, *args])
'''


def wrapped(tmp_path: Path, env: dict[str, str], before: str) -> dict[str, str]:
    """`env` with a labelled stand-in `pulumi` first on PATH that runs `before` (Python lines; `args` holds the
    arguments) and then the stand-in of tests/pulumi_stand_in.py."""
    folder = tmp_path / "wrapped"
    folder.mkdir()
    cli = folder / "pulumi"
    cli.write_text(WRAPPER.format(python=sys.executable, before=textwrap.dedent(before),
                                  stand_in=str(tmp_path / "bin" / "pulumi")))
    cli.chmod(0o755)
    return {**env, "PATH": f"{folder}{os.pathsep}{env['PATH']}"}


def test_it_reads_the_stack_file_again_and_names_each_secret_the_cli_said_it_set_but_did_not_store(
        project, stand_in, tmp_path):
    # A CLI that says it set two secrets but stored them elsewhere (another project's stack file, say).
    env = wrapped(tmp_path, stand_in, """\
        if args[:2] == ["config", "set"] and ("slackAuthToken" in args or "scratchDatabaseUrl" in args):
            sys.stdin.read(); sys.exit(0)
        """)
    result = run(project, env, "\n".join(VALUES) + "\n")
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stderr.strip() == (
        f"error: stack prod: `pulumi config set --secret` succeeded, but {project / 'Pulumi.prod.yaml'}, read again, "
        "does not hold scratchDatabaseUrl, slackAuthToken; check which stack file the CLI writes, then run this again")
    assert "every secret it needs is set" not in result.stdout
    assert not any(value in result.stdout + result.stderr for value in VALUES), "a secret was echoed"


def test_a_value_the_cli_stored_in_plain_text_is_found_on_reading_again_and_never_printed(project, stand_in,
                                                                                          tmp_path):
    # A CLI that drops --secret: the value lands in the stack file as plain text.
    env = wrapped(tmp_path, stand_in, """\
        if args[:2] == ["config", "set"] and "scratchDatabaseUrl" in args:
            args = [a for a in args if a != "--secret"]
        """)
    result = run(project, env, "\n".join(VALUES) + "\n")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: after setting databaseUrl, scratchDatabaseUrl, slackAuthToken, ")
    assert "raptorflow-dr:scratchDatabaseUrl: is plain text" in result.stderr
    assert "pulumi config set --secret --stack prod 'scratchDatabaseUrl'" in result.stderr
    assert "every secret it needs is set" not in result.stdout
    assert not any(value in result.stdout + result.stderr for value in VALUES), "a secret was echoed"


@pytest.fixture
def start(project: Path):
    """Starts `python -m tools.secrets prod` reading values from a pipe the test writes to; kills what is left."""
    started: list[subprocess.Popen] = []

    def launch(env: dict[str, str]) -> subprocess.Popen:
        started.append(subprocess.Popen([sys.executable, "-m", "tools.secrets", "prod", "--project-dir", str(project)],
                                        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True))
        return started[-1]

    yield launch
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def wait_for(process: subprocess.Popen, condition, what: str, seconds: float = 30) -> None:
    """Until `condition()` holds; a failure (with the command's stderr) if the command ends first or it takes long."""
    deadline = time.monotonic() + seconds
    while not condition():
        if process.poll() is not None:
            assert process.stderr
            pytest.fail(f"the command ended (exit {process.returncode}) before {what}: {process.stderr.read()}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def stored_as_secure(project: Path, key: str) -> bool:
    config = (yaml.safe_load((project / "Pulumi.prod.yaml").read_text()) or {}).get("config") or {}
    return isinstance(config.get(f"raptorflow-dr:{key}"), dict) and "secure" in config[f"raptorflow-dr:{key}"]


def stop(process: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM to the command alone (as `kill PID` or a supervisor sends it); its stdout and stderr once it ends."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    return process.communicate()


def test_sigterm_while_it_waits_for_a_value_exits_130_in_one_line_and_what_was_set_stays_set(project, stand_in,
                                                                                              tmp_path, start):
    process = start(stand_in)
    assert process.stdin
    process.stdin.write(VALUES[0] + "\n")
    process.stdin.flush()
    # databaseUrl is stored and the CLI has exited: the command now waits for the next line.
    wait_for(process, lambda: stored_as_secure(project, "databaseUrl") and not children(process.pid),
             "the first value was set")
    out, err = stop(process)
    assert process.returncode == 130, err
    assert out.splitlines() == ["set databaseUrl"]
    assert err.strip().splitlines() == [
        "interrupted by SIGTERM: the secrets set so far stay set (databaseUrl); run this again to set the rest"]
    assert stored_as_secure(project, "databaseUrl")
    assert len(set_calls(tmp_path)) == 1

    again = run(project, stand_in, "\n".join(VALUES[1:]) + "\n")
    assert again.returncode == 0, again.stderr
    assert [call["stdin"] for call in set_calls(tmp_path)] == VALUES, "it asks only for what is still missing"


def test_sigterm_while_the_cli_sets_a_value_lets_it_finish_then_exits_130(project, stand_in, tmp_path, start):
    # A stand-in CLI that takes its time over `config set`: a SIGTERM meanwhile must not kill it half-way
    # through writing the stack file.
    marker = tmp_path / "setting"
    env = wrapped(tmp_path, stand_in, f"""\
        if args[:2] == ["config", "set"]:
            open({str(marker)!r}, "w").close(); time.sleep(2)
        """)
    process = start(env)
    assert process.stdin
    process.stdin.write("\n".join(VALUES) + "\n")
    process.stdin.flush()
    wait_for(process, marker.exists, "the first `config set` began")
    out, err = stop(process)
    assert process.returncode == 130, err
    assert out.splitlines() == ["set databaseUrl"]
    assert err.strip().splitlines() == [
        "interrupted by SIGTERM: the secrets set so far stay set (databaseUrl); run this again to set the rest"]
    assert stored_as_secure(project, "databaseUrl"), "the value being set when the signal came was set"
    assert len(set_calls(tmp_path)) == 1
