"""`python -m tools.failover promote|demote` against a labelled stand-in Pulumi CLI (tests/pulumi_stand_in.py):
a preview never persists the flip, even when killed; failures of preview and up are one line and an exit code."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.pulumi_stand_in import calls, install
from tools.failover import health_urls
from tools.offline import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dr.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, folder / name)
    return folder


def failover(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tools.failover", *args, "--project-dir", str(project)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def leftovers() -> list[str]:
    return [p for p in os.listdir(tempfile.gettempdir()) if p.startswith("raptorflow-failover-")]


def test_a_killed_preview_leaves_the_stack_config_as_it_was(project, tmp_path):
    env = {**install(tmp_path, "dr"), "STAND_IN_SLEEP_SECONDS": "30"}
    before, temps = (project / "Pulumi.dr.yaml").read_bytes(), leftovers()
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
    assert leftovers() == temps, "the temporary copy is removed"
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # the CLI it started got the SIGTERM too: no process is left


@pytest.mark.parametrize("args, exit_code, said", [
    (("promote",), 3, "error: pulumi preview failed: error: the provider refused"),
    (("promote", "--yes"), 3, "error: pulumi up failed: error: the provider refused; raptorflow-dr:promoted=true "
                              "stays set in the stack config - fix the cause and run the same command again"),
], ids=["preview-fails", "up-fails"])
def test_a_failed_preview_or_up_is_one_line_and_an_exit_code(project, tmp_path, args, exit_code, said):
    env = {**install(tmp_path, "dr"), "STAND_IN_EXIT": "1", "STAND_IN_STDERR": "error: the provider refused"}
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
    env = {**install(tmp_path, "dr"), "STAND_IN_OUTPUTS": '{"failoverHostnames": ["127.0.0.1:1"]}'}
    process = failover(project, env, "promote", "--yes", "--timeout-seconds", "0.2", "--interval-seconds", "0.1")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "https://127.0.0.1:1/health NOT healthy within 0 s" in out
    assert "raptorflow.app" not in out, "health URLs must not come from the stack file"
    sets = [c["argv"] for c in calls(tmp_path) if c["argv"][:2] == ["config", "set"]]
    assert sets == [["config", "set", "raptorflow-dr:promoted", "--plaintext", "--stack", "dr", "--", "true"]]
    assert health_urls(["app.example.net"], "dr") == ["https://app.example.net/health"]
