"""`python -m tools.failover promote --yes` redeploys the Vercel production deployment and waits for READY.

Vercel cannot run here, so the tests answer its REST API with a labelled stand-in (VercelStandIn below, an
HTTP server on 127.0.0.1 the tests start and stop) and drive the Pulumi CLI's stand-in
(tests/pulumi_stand_in.py). The health endpoints are an HTTPS server on 127.0.0.1 whose self-signed
certificate the tool is told to trust (SSL_CERT_FILE), so a whole promotion can end healthy.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import ssl
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pulumi_stand_in import calls, install
from tests.services import serving
from tests.tools.test_failover_cli import changes, failover, run, without_vercel
from tools.vercel_deploy import VercelApi, VercelError, wait_ready

TOKEN = "vcp_s3cr3t-token-0f1e2d3c"
PROJECT_ID, TEAM_ID = "prj_raptorflowweb0001", "team_raptorflow0001"  # as in Pulumi.dr.yaml
CURRENT, NEW = "dpl_current0001", "dpl_redeploy0001"


class VercelStandIn:
    """A TEST STAND-IN for Vercel's REST API: not Vercel. It serves the three calls a redeploy makes - the newest
    READY production deployment (GET /v6/deployments), the redeploy (POST /v13/deployments) and the new
    deployment's readyState (GET /v13/deployments/ID), which walks through `states` one poll at a time (an int
    answers that HTTP status instead) - records each request, and refuses a wrong bearer token with a 403 whose
    message repeats the header it got (as a careless API might), so the tests see whether the tool echoes it."""

    def __init__(self, states: list[Any], events: list[tuple[str, str]], production: bool = True):
        self.states, self.events, self.production = list(states), events, production
        self.requests: list[dict[str, Any]] = []

    def answer(self, handler: http.server.BaseHTTPRequestHandler, method: str) -> None:
        url = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = json.loads(handler.rfile.read(length)) if length else None
        query = dict(urllib.parse.parse_qsl(url.query))
        self.requests.append({"method": method, "path": url.path, "query": query, "body": body})
        status, document = self.route(method, url.path, handler.headers.get("Authorization", ""))
        self.events.append(("vercel", f"{method} {url.path} -> {document.get('readyState', status)}"))
        raw = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def route(self, method: str, path: str, authorization: str) -> tuple[int, dict[str, Any]]:
        if authorization != f"Bearer {TOKEN}":
            return 403, {"error": {"code": "forbidden", "message": f"Not authorized: {authorization}"}}
        if (method, path) == ("GET", "/v6/deployments"):
            found = [{"uid": CURRENT, "name": "raptorflow-web", "url": "raptorflow-web-1.vercel.app",
                      "state": "READY", "readyState": "READY", "target": "production"}] if self.production else []
            return 200, {"deployments": found, "pagination": {"count": len(found), "next": None, "prev": None}}
        if (method, path) == ("POST", "/v13/deployments"):
            return 200, {"id": NEW, "name": "raptorflow-web", "readyState": "QUEUED", "target": "production"}
        if (method, path) == ("GET", f"/v13/deployments/{NEW}"):
            state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            if isinstance(state, int):
                return state, {"error": {"code": "internal_server_error", "message": "try again"}}
            failed = {"errorMessage": 'Command "npm run build" exited with 1'} if state == "ERROR" else {}
            return 200, {"id": NEW, "readyState": state, "target": "production", **failed}
        return 404, {"error": {"code": "not_found", "message": f"no {method} {path}"}}

    def polls(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == f"/v13/deployments/{NEW}"]


@contextlib.contextmanager
def vercel_api(stand_in: VercelStandIn) -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stand_in.answer(self, "GET")

        def do_POST(self) -> None:
            stand_in.answer(self, "POST")

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    """A self-signed certificate (and its key) for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI makes the test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return folder


@contextlib.contextmanager
def health_endpoint(certificate: Path, events: list[tuple[str, str]]) -> Iterator[str]:
    """https://127.0.0.1:PORT answering 200 on /health; each request recorded in `events`."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            events.append(("health", self.path))
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    with serving(Handler, tls) as server:
        yield f"127.0.0.1:{server.server_address[1]}"


def without_team(project: Path) -> None:
    stack_file = project / "Pulumi.dr.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["raptorflow-dr:standby"]["vercel"].pop("teamId")
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))


def environment(tmp_path: Path, api: str, hostnames: list[str], certificate: Path | None = None,
                supplied_by: str = "stack") -> dict[str, str]:
    env = {**install(tmp_path, "dr"), "VERCEL_API_URL": api,
           "STAND_IN_OUTPUTS": json.dumps({"failoverHostnames": hostnames})}
    env.pop("VERCEL_TOKEN", None)
    if supplied_by == "stack":
        env["STAND_IN_CONFIG"] = json.dumps({"vercel:apiToken": TOKEN})
    elif supplied_by == "env":
        env["VERCEL_TOKEN"] = TOKEN
    if certificate is not None:
        env["SSL_CERT_FILE"] = str(certificate / "cert.pem")
    return env


@pytest.mark.parametrize("supplied_by, team", [("stack", True), ("env", False)], ids=["stack-token-team", "env-token"])
def test_promote_redeploys_production_and_checks_health_once_it_is_ready(project, tmp_path, certificate, supplied_by, team):
    events: list[tuple[str, str]] = []
    stand_in = VercelStandIn(["QUEUED", "BUILDING", "BUILDING", "READY"], events)
    if not team:
        without_team(project)
    with vercel_api(stand_in) as api, health_endpoint(certificate, events) as host:
        env = environment(tmp_path, api, [host], certificate, supplied_by)
        code, out, err = run(project, env, "promote", "--yes", "--timeout-seconds", "30", "--interval-seconds", "0.05")
        again = run(project, env, "promote", "--yes", "--timeout-seconds", "30", "--interval-seconds", "0.05")
    assert code == 0, err
    assert again[0] == 0 and [r["method"] for r in stand_in.requests].count("POST") == 2, \
        "run again, it redeploys again and succeeds again"
    stand_in.requests = stand_in.requests[:len(stand_in.requests) - 3]  # the second run: list, create, one poll
    assert TOKEN not in out + err
    teams = {"teamId": TEAM_ID} if team else {}
    listed, created = stand_in.requests[0], stand_in.requests[1]
    assert (listed["method"], listed["path"]) == ("GET", "/v6/deployments")
    assert listed["query"] == {"projectId": PROJECT_ID, "target": "production", "state": "READY", "limit": "1", **teams}
    assert (created["method"], created["path"], created["query"]) == ("POST", "/v13/deployments", teams)
    assert created["body"] == {"name": "raptorflow-web", "project": PROJECT_ID, "deploymentId": CURRENT,
                               "target": "production"}
    assert len(stand_in.polls()) == 4 and all(p["query"] == teams for p in stand_in.polls())
    first_health = events.index(("health", "/health"))
    assert events[first_health - 1] == ("vercel", f"GET /v13/deployments/{NEW} -> READY"), \
        "the health checks start once the new deployment is READY, not before"
    lines = [line.split(" s  ", 1)[1] for line in out.splitlines() if " s  " in line]
    assert lines[:3] == ["config raptorflow-dr:promoted=true", "pulumi up finished",
                         f"redeploy requested: Vercel deployment {NEW} of production deployment {CURRENT}"]
    assert lines[3].startswith(f"deployment {NEW} READY after ") and lines[4].startswith(f"https://{host}/health healthy")
    asked = [c["argv"][:3] for c in calls(tmp_path) if c["argv"][:2] == ["config", "get"]]
    assert asked == ([["config", "get", "vercel:apiToken"]] * 2 if supplied_by == "stack" else []), \
        "VERCEL_TOKEN, when set, is used instead of the stack's secret"


@pytest.mark.parametrize("states, timeout, said", [
    (["BUILDING", "ERROR"], "30", f'Vercel deployment {NEW} ended ERROR (Command "npm run build" exited with 1); '
                                  f"its build log: `vercel inspect {NEW} --logs`"),
    (["BUILDING", "CANCELED"], "30", f"Vercel deployment {NEW} ended CANCELED; its build log: "
                                     f"`vercel inspect {NEW} --logs`"),
    (["BUILDING"], "0.5", f"Vercel deployment {NEW} was not READY in time (last: BUILDING); it may still finish - "
                          f"`vercel inspect {NEW}`"),
], ids=["error", "canceled", "timeout"])
def test_a_redeploy_that_does_not_become_ready_exits_4_in_one_line(project, tmp_path, states, timeout, said):
    events: list[tuple[str, str]] = []
    stand_in = VercelStandIn(states, events)
    with vercel_api(stand_in) as api:
        env = environment(tmp_path, api, ["127.0.0.1:1"])
        code, out, err = run(project, env, "promote", "--yes", "--timeout-seconds", timeout, "--interval-seconds", "0.05")
    assert code == 4, err
    assert err.strip() == (f"error: the Vercel redeploy failed: {said}; raptorflow-dr:promoted=true is applied - "
                           "fix the cause and run the same command again")
    assert "redeploy requested" in out and "healthy" not in out, "no health check after a failed redeploy"
    assert TOKEN not in out + err


def test_an_api_that_repeats_the_token_never_gets_it_printed(project, tmp_path):
    stand_in = VercelStandIn(["READY"], [])
    with vercel_api(stand_in) as api:
        env = {**environment(tmp_path, api, ["127.0.0.1:1"], supplied_by="env"), "VERCEL_TOKEN": TOKEN + "-revoked"}
        code, out, err = run(project, env, "promote", "--yes", "--timeout-seconds", "5")
    assert code == 4, err
    assert err.strip() == ("error: the Vercel redeploy failed: Vercel API GET /v6/deployments answered 403: Not "
                           "authorized: Bearer [token]; raptorflow-dr:promoted=true is applied - fix the cause and "
                           "run the same command again")
    assert TOKEN not in out + err


def test_a_project_without_a_production_deployment_cannot_be_redeployed(project, tmp_path):
    stand_in = VercelStandIn(["READY"], [], production=False)
    with vercel_api(stand_in) as api:
        code, _out, err = run(project, environment(tmp_path, api, ["127.0.0.1:1"]), "promote", "--yes")
    assert code == 4, err
    assert f"Vercel project {PROJECT_ID} has no READY production deployment to redeploy" in err
    assert [r["method"] for r in stand_in.requests] == ["GET"], "nothing is created"


def test_without_a_token_nothing_changes(project, tmp_path):
    before = (project / "Pulumi.dr.yaml").read_bytes()
    code, _out, err = run(project, environment(tmp_path, "http://127.0.0.1:1", ["127.0.0.1:1"], supplied_by="none"),
                          "promote", "--yes")
    assert code == 2
    assert err.strip() == ("error: no Vercel token: the stack has no vercel:apiToken (`pulumi config set --secret "
                           "vercel:apiToken --stack STACK`) and VERCEL_TOKEN is not set; nothing was changed")
    assert changes(tmp_path) == [] and (project / "Pulumi.dr.yaml").read_bytes() == before


def test_a_plain_http_api_url_off_this_machine_is_refused_before_anything_changes(project, tmp_path):
    env = environment(tmp_path, "http://api.vercel.example", ["127.0.0.1:1"])
    code, _out, err = run(project, env, "promote", "--yes")
    assert code == 2
    assert err.strip() == ("error: VERCEL_API_URL=http://api.vercel.example is not an https:// URL (plain http only "
                           "to 127.0.0.1 or localhost)")
    assert calls(tmp_path) == []


def test_the_preview_says_that_apply_redeploys_when_the_stack_has_a_vercel_project(project, tmp_path):
    code, out, err = run(project, install(tmp_path, "dr"), "promote")
    assert code == 0, err
    assert f"with --yes, Vercel project {PROJECT_ID}'s production deployment is redeployed after the update" in out
    code, out, err = run(without_vercel(project), install(tmp_path, "dr"), "promote")
    assert code == 0 and "redeploy" not in out, err


def test_a_killed_redeploy_wait_ends_at_once_and_says_what_keeps_building(project, tmp_path):
    stand_in = VercelStandIn(["BUILDING"], [])
    with vercel_api(stand_in) as api:
        process = failover(project, environment(tmp_path, api, ["127.0.0.1:1"]), "promote", "--yes",
                           "--interval-seconds", "0.05")
        try:
            deadline = time.monotonic() + 60
            while not stand_in.polls() and time.monotonic() < deadline:
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("interrupted: the stack config may already say promoted; run the command "
                                            f"again (Vercel deployment {NEW} keeps building)")
    assert "Traceback" not in err and TOKEN not in out + err
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)


def test_a_poll_that_goes_unanswered_is_asked_again():
    stand_in = VercelStandIn(["BUILDING", 503, 429, "READY"], [])
    with vercel_api(stand_in) as url:
        wait_ready(VercelApi(TOKEN, TEAM_ID, url), NEW, deadline=time.monotonic() + 30, interval_seconds=0.01)
    assert len(stand_in.polls()) == 4


def test_a_poll_the_api_refuses_ends_the_wait():
    stand_in = VercelStandIn(["BUILDING", 404, "READY"], [])
    with vercel_api(stand_in) as url, pytest.raises(VercelError, match=f"GET /v13/deployments/{NEW} answered 404"):
        wait_ready(VercelApi(TOKEN, TEAM_ID, url), NEW, deadline=time.monotonic() + 30, interval_seconds=0.01)
