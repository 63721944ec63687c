"""`python -m tools.adopt` against the labelled stand-in Pulumi CLI (tests/pulumi_stand_in.py): it lists what it
imports, makes the adopting run from a temporary copy of the stack file and then a normal run, never changes
the stack file (not even when killed), and fails in one line with a documented exit code.

The tool runs in this process (its `main`, with the stand-in's environment) except where a signal is sent."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml

from tests.pulumi_stand_in import calls, install
from tests.services import serving
from tools.offline import ROOT

# What the accounts hold, as the stack file declares it: Cloudflare records by id, Vercel variables by id.
RECORDS = {"3c9f1e2d4b5a69788796a5b4c3d2e1f0": ("raptorflow.app", "A"),
           "7a1b2c3d4e5f60718293a4b5c6d7e8f9": ("app.raptorflow.app", "CNAME"),
           "0123456789abcdef0123456789abcdef": ("status.raptorflow.app", "CNAME")}
VARIABLES = {"Qm3xT8vLw2RkP9aZ": "REGION", "Hn5cY1bVq7JdE4sU": "SUPABASE_URL", "Zp2gK6mWr0XfT3yN": "SUPABASE_SERVICE_ROLE_KEY",
             "Ab1cD2eF3gH4iJ5k": "SENTRY_DSN"}
TOKEN = "cf-and-vercel-token-0123456789"


class _Accounts(http.server.BaseHTTPRequestHandler):
    """A TEST STAND-IN for the read-only calls tools.adopt makes to Cloudflare and Vercel (not their APIs)."""

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        found: dict | None = None
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(403)
        elif path.startswith("/zones/") and path.rsplit("/", 1)[-1] in RECORDS:
            name, kind = RECORDS[path.rsplit("/", 1)[-1]]
            found = {"success": True, "result": {"name": name, "type": kind}}
        elif "/env/" in path and path.rsplit("/", 1)[-1] in VARIABLES:
            found = {"key": VARIABLES[path.rsplit("/", 1)[-1]], "target": ["production"]}
        if found is None:
            self.send_response(404 if self.headers.get("Authorization") == f"Bearer {TOKEN}" else 403)
            self.end_headers()
            return
        body = json.dumps(found).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def accounts():
    """The stand-in on 127.0.0.1, stopped after the module; yields its URL."""
    with serving(_Accounts) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def stand_ins(tmp_path: Path, accounts: str) -> dict[str, str]:
    """The stand-in CLI's environment, with the account stand-in and its token."""
    return {**install(tmp_path, "dr"), "CLOUDFLARE_API_URL": accounts, "VERCEL_API_URL": accounts,
            "CLOUDFLARE_API_TOKEN": TOKEN, "VERCEL_TOKEN": TOKEN}


def adopt(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tools.adopt", *args, "--project-dir", str(project)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(process: subprocess.Popen, kill_group: bool = True) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=90)
    finally:
        if kill_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert "Traceback" not in out + err, err
    return process.returncode, out, err


def in_process(monkeypatch, capsys, env: dict[str, str], project: Path, *args: str) -> tuple[int, str, str]:
    """`python -m tools.adopt ARGS` as `main`, in this process, with `env` as its environment."""
    from tools.adopt import main

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main([*args, "--project-dir", str(project)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def runs(folder: Path) -> list[dict]:
    return [c for c in calls(folder) if c["argv"][:1] in (["up"], ["preview"])]


def deploy_section(config_file: str) -> dict:
    return yaml.safe_load(config_file)["config"]["raptorflow-dr:deploy"]


def test_yes_imports_in_an_adopting_run_then_applies_the_declared_values(project, tmp_path, monkeypatch, capsys,
                                                                         accounts):
    env = {**stand_ins(tmp_path, accounts), "TMPDIR": str(tmp_path)}
    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    before = (project / "Pulumi.dr.yaml").read_bytes()
    code, out, err = in_process(monkeypatch, capsys, env, project, "dr", "--yes")
    assert code == 0, err
    assert "dr: adopts 5 existing resources" in out
    assert "dns-apex-record  <- 9f1c2b3a4d5e6f708192a3b4c5d6e7f8/3c9f1e2d4b5a69788796a5b4c3d2e1f0" in out
    first, second = runs(tmp_path)
    assert first["argv"][0] == second["argv"][0] == "up"
    assert deploy_section(first["configFile"]) == {"adopting": True}, "the first run adopts"
    assert "configFile" not in second, "the second run is a normal run from the stack's own file"
    assert (project / "Pulumi.dr.yaml").read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith("raptorflow-adopt-")], "the copy is removed"


def test_without_yes_it_only_previews_the_adopting_run(project, tmp_path, monkeypatch, capsys, accounts):
    env = stand_ins(tmp_path, accounts)
    code, out, err = in_process(monkeypatch, capsys, env, project, "myorg/raptorflow-dr/dr", "--rebuild")
    assert code == 0, err
    (preview,) = runs(tmp_path)
    assert preview["argv"][0] == "preview"
    assert preview["argv"][preview["argv"].index("--stack") + 1] == "myorg/raptorflow-dr/dr"
    assert deploy_section(preview["configFile"]) == {"adopting": True, "rebuild": True}
    assert "nothing applied" in out


def test_a_failed_run_is_one_line_and_exit_3(project, tmp_path, monkeypatch, capsys, accounts):
    env = {**stand_ins(tmp_path, accounts), "STAND_IN_EXIT": "1", "STAND_IN_STDERR": "error: 81053 record exists"}
    code, _out, err = in_process(monkeypatch, capsys, env, project, "dr", "--yes")
    assert code == 3
    assert err.strip() == ("error: pulumi up (adopting run) failed: error: 81053 record exists; nothing in the "
                           "stack file changed - fix the cause and run the same command again")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_killed_during_the_adopting_run_it_leaves_nothing_and_exits_130(project, tmp_path, signum, accounts):
    env = {**stand_ins(tmp_path, accounts), "STAND_IN_SLEEP_SECONDS": "30", "TMPDIR": str(tmp_path)}
    before = (project / "Pulumi.dr.yaml").read_bytes()
    process = adopt(project, env, "dr", "--yes")
    deadline = time.monotonic() + 60
    while not runs(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signum)  # `kill`, or the terminal or SSH session closing
    code, _out, err = finish(process, kill_group=False)
    time.sleep(0.5)
    assert code == 130
    assert err.strip().splitlines()[-1] == "interrupted: the stack file is unchanged; run the same command again " \
                                           "to finish"
    assert (project / "Pulumi.dr.yaml").read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith("raptorflow-adopt-")]
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # the CLI it started got the SIGTERM too: no process is left


@pytest.mark.parametrize("stack, env_path, code, said", [
    ("prod", None, 0, "prod: nothing is declared existing; a plain `pulumi up` creates everything"),
    ("staging", None, 2, "error: no stack file Pulumi.staging.yaml in"),
    ("dr", "/nonexistent", 2, "error: the Pulumi CLI is not installed"),
    ("acme/other-project/dr", None, 2, "error: 'acme/other-project/dr' is a stack of project other-project, not of "
                                       "raptorflow-dr"),
], ids=["nothing-to-adopt", "no-stack-file", "no-cli", "other-project"])
def test_what_cannot_or_need_not_run_says_so(project, tmp_path, monkeypatch, capsys, stack, env_path, code, said):
    env = install(tmp_path, "dr")
    if env_path:
        env["PATH"] = env_path
    returned, out, err = in_process(monkeypatch, capsys, env, project, stack, "--yes")
    assert returned == code
    assert said in (out if code == 0 else err)
    if code == 0:
        assert runs(tmp_path) == [], "nothing to adopt: no pulumi run"


@pytest.mark.parametrize("setting, said", [
    ("raptorflow-dr:standby.failover.hostnames[2].existingRecordId=0123456789abcdef0123456789abcdef",
     "existingRecordId 0123456789abcdef0123456789abcdef of app.raptorflow.app (CNAME) is the CNAME record of "
     "status.raptorflow.app"),
    ("raptorflow-dr:standby.vercel.existingEnvIds.REGION=Ab1cD2eF3gH4iJ5k",
     "existingEnvIds.REGION Ab1cD2eF3gH4iJ5k is the variable SENTRY_DSN"),
    ("raptorflow-dr:standby.vercel.existingEnvIds.REGION=Zz9yX8wV7uT6sR5q",
     "REGION: Vercel API GET /v1/projects/prj_raptorflowweb0001/env/Zz9yX8wV7uT6sR5q answered 404"),
], ids=["record-of-another-name", "variable-of-another-key", "no-such-variable"])
def test_an_id_that_names_another_record_or_variable_is_refused_before_any_run(
        project, tmp_path, monkeypatch, capsys, accounts, setting, said):
    # A CLI since pulumi/pulumi#19339 would import it and update it to the declared values: another record renamed.
    stack_file = project / "Pulumi.dr.yaml"
    from tools.offline import apply_override
    from tools.stack_yaml import dump_yaml, load_yaml_mapping

    document = load_yaml_mapping(stack_file)
    apply_override(document["config"], setting)
    stack_file.write_text(dump_yaml(document))
    code, _out, err = in_process(monkeypatch, capsys, stand_ins(tmp_path, accounts), project, "dr", "--yes")
    assert code == 2
    assert err.startswith("error: ids in the stack file name other records or variables; nothing was changed")
    assert said in err and TOKEN not in err
    assert runs(tmp_path) == [], "no pulumi run"
