"""`python -m tools.failover promote|demote` against a labelled stand-in Pulumi CLI (tests/pulumi_stand_in.py):
a preview never persists the flip, even when killed; failures of preview and up are one line and an exit code;
the org-qualified stack forms read the short name's stack file; what cannot work is refused before anything
changes (a missing or unwritable stack file, a timeout that is not a number); an update that reports no
hostname to check is not called healthy."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import yaml

from tests.pulumi_stand_in import calls, install
from tools.failover import health_urls
from tools.offline import ROOT

NO_SUCH_PORT = '{"failoverHostnames": ["127.0.0.1:1"]}'  # port 1 refuses at once


def without_vercel(project: Path) -> Path:
    """The copied dr stack without its `standby.vercel` section: an update that needs no Vercel redeploy."""
    stack_file = project / "Pulumi.dr.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"] = {k: v for k, v in document["config"].items() if k != "raptorflow-dr:vercelSecretValues"}
    del document["config"]["raptorflow-dr:standby"]["vercel"]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return project


def run(project: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`python -m tools.failover ARGS` as its `main`, in this process, with `env` as the whole environment (the
    tests that send a signal start it as a process instead: `failover`)."""
    from tools.failover import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, env, clear=True), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            code = main([*args, "--project-dir", str(project)])
        except SystemExit as exc:  # argparse's refusals
            code = exc.code if isinstance(exc.code, int) else 2
    assert "Traceback" not in out.getvalue() + err.getvalue(), err.getvalue()
    return code, out.getvalue(), err.getvalue()


def changes(folder: Path) -> list[list[str]]:
    """The stand-in calls that change the stack: config set, preview, up."""
    return [c["argv"] for c in calls(folder) if c["argv"][:2] == ["config", "set"] or c["argv"][:1] in (["up"], ["preview"])]


def failover(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tools.failover", *args, "--project-dir", str(project)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def leftovers(folder: Path) -> list[str]:
    return [p for p in os.listdir(folder) if p.startswith("raptorflow-failover-")]


def test_a_killed_preview_leaves_the_stack_config_as_it_was(project, tmp_path):
    # Its own temporary folder: another test's run in parallel must not look like something left behind.
    env = {**install(tmp_path, "dr"), "STAND_IN_SLEEP_SECONDS": "30", "TMPDIR": str(tmp_path)}
    before, temps = (project / "Pulumi.dr.yaml").read_bytes(), leftovers(tmp_path)
    process = failover(project, env, "promote")
    deadline = time.monotonic() + 30
    while not any(c["argv"][:1] == ["preview"] for c in calls(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    try:
        _out, err = process.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # nothing should be left; if something is, end it
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == "interrupted: nothing was changed" and "Traceback" not in err
    assert (project / "Pulumi.dr.yaml").read_bytes() == before, "the flip reached the stack file"
    assert not [c for c in calls(tmp_path) if c["argv"][:2] == ["config", "set"]], "a preview sets no config"
    (preview,) = [c for c in calls(tmp_path) if c["argv"][:1] == ["preview"]]
    assert "raptorflow-dr:promoted: true" in preview["configFile"], "the preview sees the flipped copy"
    assert leftovers(tmp_path) == temps, "the temporary copy is removed"
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # the CLI it started got the SIGTERM too: no process is left


@pytest.mark.parametrize("args, exit_code, said", [
    (("promote",), 3, "error: pulumi preview failed: error: the provider refused"),
    (("promote", "--yes"), 3, "error: pulumi up failed: error: the provider refused; raptorflow-dr:promoted=true "
                              "stays set in the stack config - fix the cause and run the same command again"),
], ids=["preview-fails", "up-fails"])
def test_a_failed_preview_or_up_is_one_line_and_an_exit_code(project, tmp_path, args, exit_code, said):
    # With --yes the Vercel token is read before anything changes; a failed up stops before the redeploy.
    env = {**install(tmp_path, "dr"), "STAND_IN_EXIT": "1", "STAND_IN_STDERR": "error: the provider refused",
           "STAND_IN_CONFIG": '{"vercel:apiToken": "unused"}', "VERCEL_API_URL": "http://127.0.0.1:1"}
    process = failover(project, env, *args)
    out, err = process.communicate(timeout=60)
    assert process.returncode == exit_code, err
    assert err.strip() == said, err
    assert "Traceback" not in out + err


def test_without_the_cli_promote_says_so_in_one_line(project):
    process = failover(project, {**os.environ, "PATH": "/nonexistent"}, "promote")
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: the Pulumi CLI is not installed")


def test_after_up_the_health_urls_are_the_hostnames_the_update_reports(project, tmp_path):
    # A hostname that is in no stack file: only the update's outputs can have named it (port 1 refuses at once).
    env = {**install(tmp_path, "dr"), "STAND_IN_OUTPUTS": NO_SUCH_PORT}
    process = failover(without_vercel(project), env, "promote", "--yes", "--timeout-seconds", "0.2",
                       "--interval-seconds", "0.1")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "https://127.0.0.1:1/health NOT healthy within 0 s" in out
    assert "raptorflow.app" not in out, "health URLs must not come from the stack file"
    sets = [c["argv"] for c in calls(tmp_path) if c["argv"][:2] == ["config", "set"]]
    assert sets == [["config", "set", "raptorflow-dr:promoted", "--plaintext", "--stack", "dr", "--", "true"]]
    assert health_urls(["app.example.net"], "dr") == ["https://app.example.net/health"]


@pytest.mark.parametrize("stack", ["myorg/dr", "myorg/raptorflow-dr/dr"])
def test_an_org_qualified_stack_uses_the_stack_file_of_its_short_name(project, tmp_path, stack):
    env = {**install(tmp_path, "dr"), "STAND_IN_OUTPUTS": NO_SUCH_PORT}
    code, out, err = run(project, env, "promote", "--stack", stack)
    assert code == 0, err
    (preview,) = [c for c in calls(tmp_path) if c["argv"][:1] == ["preview"]]
    assert preview["argv"][preview["argv"].index("--stack") + 1] == stack, "the Automation API selects the full name"
    assert "raptorflow-dr:promoted: true" in preview["configFile"] and "zoneId" in preview["configFile"], \
        "the preview sees a flipped copy of Pulumi.dr.yaml"

    code, out, err = run(without_vercel(project), env, "promote", "--stack", stack, "--yes",
                         "--timeout-seconds", "0.2", "--interval-seconds", "0.1")
    assert code == 1, err
    assert ["config", "set", "raptorflow-dr:promoted", "--plaintext", "--stack", stack, "--", "true"] in changes(tmp_path)
    assert yaml.safe_load((project / "Pulumi.dr.yaml").read_text())["config"]["raptorflow-dr:promoted"] == "true"
    assert "https://127.0.0.1:1/health NOT healthy" in out, "the health path comes from Pulumi.dr.yaml"
    assert not (project / "myorg").exists()


def test_diff_takes_the_org_qualified_stack_too(run_cli):
    # In this process (an offline plan): the promote tests above run `python -m tools.failover` as its own process.
    process = run_cli("tools.failover", "diff", "--stack", "myorg/dr")
    assert process.returncode == 0, process.stderr
    assert "promoting myorg/dr:" in process.stdout and "nothing is created, replaced or deleted" in process.stdout


def test_a_stack_of_another_project_is_refused_in_one_line(project, tmp_path):
    code, _out, err = run(project, install(tmp_path, "dr"), "promote", "--stack", "myorg/other-project/dr", "--yes")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "other-project" in err and "raptorflow-dr" in err
    assert changes(tmp_path) == []


@pytest.mark.parametrize("apply", [False, True], ids=["preview", "yes"])
def test_a_missing_stack_file_is_named_in_one_line(project, tmp_path, apply):
    code, _out, err = run(project, install(tmp_path, "dr,staging"), "promote", "--stack", "myorg/staging",
                          *(["--yes"] if apply else []))
    assert code == 2, err
    assert err.strip() == "error: no stack file Pulumi.staging.yaml; stacks here: dr, prod"
    assert changes(tmp_path) == [], "nothing is set, previewed or updated"


@pytest.mark.parametrize("option, value", [
    ("--timeout-seconds", "nan"), ("--timeout-seconds", "inf"), ("--timeout-seconds", "-1"),
    ("--interval-seconds", "-1"), ("--interval-seconds", "nan"), ("--interval-seconds", "0"),
])
def test_a_timeout_or_interval_that_is_not_a_usable_number_is_refused_before_anything_changes(
        project, tmp_path, option, value):
    env = {**install(tmp_path, "dr"), "STAND_IN_OUTPUTS": NO_SUCH_PORT}
    before = (project / "Pulumi.dr.yaml").read_bytes()
    code, _out, err = run(project, env, "promote", "--yes", option, value)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith(f"python -m tools.failover promote: error: argument {option}: ") and value in line
    assert calls(tmp_path) == [] and (project / "Pulumi.dr.yaml").read_bytes() == before


@pytest.mark.parametrize("outputs", ["{}", '{"failoverHostnames": []}'], ids=["missing", "empty"])
def test_an_update_that_reports_no_hostname_to_check_is_a_failure(project, tmp_path, outputs):
    env = {**install(tmp_path, "dr"), "STAND_IN_OUTPUTS": outputs}
    code, out, err = run(without_vercel(project), env, "promote", "--yes", "--timeout-seconds", "0.2")
    assert code == 5, err
    assert err.strip() == ("error: the update reported no failoverHostnames, so no health endpoint was checked; "
                           "check the stack's outputs (`pulumi stack output --stack dr`) - the flip is applied")
    assert "healthy" not in out


@contextlib.contextmanager
def unwritable(path: Path):
    """`path` made unwritable: immutable (chattr +i) for root, whom permissions do not stop; read-only otherwise."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("this file system has no immutable flag (chattr +i) and root ignores read-only modes")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)


def test_an_unwritable_stack_file_is_named_before_anything_changes(project, tmp_path):
    env = {**install(tmp_path, "dr"), "STAND_IN_OUTPUTS": NO_SUCH_PORT}
    stack_file = without_vercel(project) / "Pulumi.dr.yaml"
    before = stack_file.read_bytes()
    with unwritable(stack_file):
        code, _out, err = run(project, env, "promote", "--yes")
        assert code == 2, err
        (line,) = err.strip().splitlines()
        assert line.startswith("error: the stack file Pulumi.dr.yaml is read-only or immutable (")
        assert line.endswith("): make it writable (chmod u+w, chattr -i) and run the same command again; "
                             "nothing was changed")
        assert changes(tmp_path) == []
        code, _out, err = run(project, env, "promote")
        assert code == 0, "a preview writes only its temporary copy, so it still works"
    assert stack_file.read_bytes() == before


def test_a_stack_file_the_cli_cannot_write_is_named_in_one_line(project, tmp_path):
    env = {**install(tmp_path, "dr"), "STAND_IN_OUTPUTS": NO_SUCH_PORT,
           "STAND_IN_CONFIG_SET_STDERR": f"error: open {project}/Pulumi.dr.yaml: read-only file system"}
    code, _out, err = run(without_vercel(project), env, "promote", "--yes")
    assert code == 2, err
    assert err.strip() == (f"error: the stack file Pulumi.dr.yaml is read-only or immutable (error: open "
                           f"{project}/Pulumi.dr.yaml: read-only file system): make it writable (chmod u+w, "
                           "chattr -i) and run the same command again; nothing was changed")
    assert not [argv for argv in changes(tmp_path) if argv[:1] == ["up"]], "no update after a failed flip"
