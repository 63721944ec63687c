"""STAND-IN for Vercel: one project's environment variables and its production deployments, behind the REST
calls the failover tool (tools/vercel_deploy.py) and the drill's stand-in Pulumi CLI make. Not Vercel.

It holds the dr plan's `vercel:index/projectEnvironmentVariable` resources (key, targets, projectId, teamId,
sensitive) with values the drill supplies: the database variables name the drill's own databases (the primary
site's values the US cluster, the standby's the EU cluster; the key variable holds the password and is
sensitive, never returned or printed). As on Vercel, a deployment takes a copy of the variables when it is
created, and a changed variable reaches the app only through a new deployment: a redeploy is built by
restarting the app stand-ins (tools/drill/app.py) with the new deployment's variables, and becomes READY when
every restarted app answers with its id. That is real work; Vercel's own build time cannot be measured here.

Endpoints (http on 127.0.0.1 in rfdr-net, the only plain http the tool accepts; a Bearer token and the project's
`teamId` on every call):

    GET   /v6/deployments?projectId=P&target=production&state=READY&limit=1   the production deployment
    POST  /v13/deployments  {"name", "project", "deploymentId", "target"}      a redeploy (QUEUED, then BUILDING)
    GET   /v13/deployments/ID                                                 its readyState
    GET   /v10/projects/P/env                                                 the variables (no sensitive value)
    PATCH /v9/projects/P/env/ENV_ID  {"value"}                                 change one (what `pulumi up` does)

FOR TESTS: with RFDR_VERCEL_FAULT=never-ready in the drill's environment, a redeploy requested through the API
never becomes READY (the failover tool then gives up at its timeout with exit 4).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tools.drill.world import MISSED, DrillError, serve_http, stop_http

PORT = 8081
HOST = "127.0.0.1"
URL_VARIABLE = "SUPABASE_URL"
"""The variable whose value the app stand-ins connect to (the Supabase project's URL)."""
KEY_VARIABLE = "SUPABASE_SERVICE_ROLE_KEY"
"""The sensitive variable that holds the database's password."""
FAULT_VARIABLE = "RFDR_VERCEL_FAULT"
NEVER_READY = "never-ready"
_ENV_ROUTE = re.compile(r"^/v(?:9|10)/projects/(?P<project>[^/]+)/env(?:/(?P<env>[^/]+))?$")
_DEPLOYMENT_ROUTE = re.compile(r"^/v13/deployments/(?P<id>[^/]+)$")


def base_url() -> str:
    """VERCEL_API_URL for the tool and the stand-in CLI (both run in rfdr-net)."""
    return f"http://{HOST}:{PORT}"


def database_host(url: str | None) -> str | None:
    """The host a database URL names (no user, no password): what the evidence shows."""
    return urllib.parse.urlsplit(url).hostname if url else None


@dataclass
class Variable:
    """One project environment variable, as the plan declares it, with the value the drill supplies."""

    id: str
    key: str
    value: str
    targets: list[str]
    sensitive: bool

    def listed(self) -> dict[str, Any]:
        """As GET /v10/projects/P/env lists it (a sensitive value is never returned)."""
        return {"id": self.id, "key": self.key, "target": self.targets,
                "type": "sensitive" if self.sensitive else "encrypted",
                **({} if self.sensitive else {"value": self.value})}


@dataclass
class Deployment:
    """A deployment: the variables it was created with, and when it was requested and became READY."""

    id: str
    name: str
    variables: dict[str, str]
    requested_at: float  # monotonic
    state: str = "QUEUED"
    ready_at: float | None = None
    through_api: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Its record for the drill's evidence (database hosts only, never a value)."""
        return {"id": self.id, "state": self.state, "throughApi": self.through_api,
                "databaseHost": database_host(self.variables.get(URL_VARIABLE)),
                "readySeconds": None if self.ready_at is None else round(self.ready_at - self.requested_at, 3),
                **self.evidence}


Build = Callable[[Deployment], None]
"""Builds a deployment: restarts the app stand-ins with its variables; returns when they serve it."""


class VercelStandIn:
    """STAND-IN for one Vercel project: variables, deployments, and the API calls on them."""

    def __init__(self, project_id: str, team_id: str | None, token: str, variables: list[Variable],
                 build: Build, name: str) -> None:
        self.project_id, self.team_id, self.token, self.name = project_id, team_id, token, name
        self.variables = {v.id: v for v in variables}
        self.build = build
        self.fault = os.environ.get(FAULT_VARIABLE, "")
        self.deployments: dict[str, Deployment] = {}
        self.production: Deployment | None = None
        self.changes: list[dict[str, Any]] = []  # every variable change: key, when (monotonic)
        self.lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ what the drill does directly

    def set_value(self, key: str, value: str) -> None:
        """Change a variable's value (the drill's own change, outside any failover)."""
        with self.lock:
            self._variable(key).value = value
            self.changes.append({"key": key, "at": time.monotonic(), "by": "drill"})

    def value(self, key: str) -> str:
        """A variable's live value."""
        with self.lock:
            return self._variable(key).value

    def _variable(self, key: str) -> Variable:
        return next(v for v in self.variables.values() if v.key == key)

    def deploy(self) -> Deployment:
        """A production deployment with the variables as they are now, built before returning (the drill's
        first deployment, and its own redeploys when it moves the app to another database)."""
        deployment = self._create(through_api=False)
        self._build(deployment)
        if deployment.state != "READY":
            raise DrillError(MISSED, f"the Vercel stand-in could not build deployment {deployment.id}: "
                                     f"{deployment.evidence.get('error')}")
        return deployment

    def _create(self, through_api: bool) -> Deployment:
        with self.lock:
            snapshot = {v.key: v.value for v in self.variables.values() if "production" in v.targets}
            deployment = Deployment(f"dpl_{uuid.uuid4().hex[:24]}", self.name, snapshot, time.monotonic(),
                                    through_api=through_api)
            serving = self.production
            if serving is not None:
                # What the app serves while the new deployment builds: the old deployment's database.
                deployment.evidence = {"replacing": serving.id,
                                       "servingDatabaseHost": database_host(serving.variables.get(URL_VARIABLE))}
            self.deployments[deployment.id] = deployment
            return deployment

    def _build(self, deployment: Deployment) -> None:
        deployment.state = "BUILDING"
        try:
            self.build(deployment)
        except Exception as exc:  # noqa: BLE001 - the deployment ends ERROR, as a failed build does on Vercel
            deployment.state = "ERROR"
            deployment.evidence["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            return
        with self.lock:
            deployment.state, deployment.ready_at = "READY", time.monotonic()
            self.production = deployment

    def redeploys(self) -> list[Deployment]:
        """The deployments requested through the API, in order."""
        with self.lock:
            return [d for d in self.deployments.values() if d.through_api]

    # ------------------------------------------------------------------ the API

    def start(self) -> None:
        """Serve the API in rfdr-net until `stop`."""
        self._http = serve_http("net", (HOST, PORT), self._handler(), "rfdr-vercel-stand-in")

    def stop(self) -> None:
        """Stop serving."""
        stop_http(self._http)
        self._http = None

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        """(status, JSON) for one authorised request."""
        if (query.get("teamId") or None) != self.team_id:
            return 403, _error("forbidden", "You don't have permission to access this team's resources")
        if method == "GET" and path == "/v6/deployments":
            if query.get("projectId") != self.project_id:
                return 404, _error("not_found", "Project not found")
            with self.lock:
                found = [self.production] if self.production and query.get("state", "READY") == "READY" else []
            return 200, {"deployments": [{"uid": d.id, "name": d.name, "readyState": d.state, "target": "production"}
                                         for d in found]}
        if method == "POST" and path == "/v13/deployments":
            return self._redeploy(body)
        match = _DEPLOYMENT_ROUTE.match(path)
        if method == "GET" and match:
            with self.lock:
                deployment = self.deployments.get(match["id"])
            if deployment is None:
                return 404, _error("not_found", "Deployment not found")
            return 200, {"id": deployment.id, "name": deployment.name, "readyState": deployment.state,
                         "target": "production"}
        match = _ENV_ROUTE.match(path)
        if match and match["project"] == self.project_id:
            if method == "GET" and match["env"] is None:
                with self.lock:
                    return 200, {"envs": [v.listed() for v in self.variables.values()]}
            if method == "PATCH" and match["env"] in self.variables:
                return self._update(match["env"], body)
        return 404, _error("not_found", f"{method} {path} is not served by the stand-in")

    def _redeploy(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not body.get("name"):
            return 400, _error("bad_request", "Invalid request: missing required property `name`")
        if body.get("project") != self.project_id or body.get("deploymentId") not in self.deployments:
            return 404, _error("not_found", "Deployment or project not found")
        deployment = self._create(through_api=True)
        if self.fault != NEVER_READY:
            threading.Thread(target=self._build, args=(deployment,), name="rfdr-vercel-build", daemon=True).start()
        else:
            deployment.state = "BUILDING"  # FOR TESTS: a build that never finishes
        return 200, {"id": deployment.id, "name": deployment.name, "readyState": "QUEUED"}

    def _update(self, env_id: str, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not isinstance(body.get("value"), str):
            return 400, _error("bad_request", "Invalid request: `value` should be a string")
        with self.lock:
            variable = self.variables[env_id]
            variable.value = body["value"]
            if isinstance(body.get("target"), list):
                variable.targets = [str(t) for t in body["target"]]
            self.changes.append({"key": variable.key, "at": time.monotonic(), "by": "api"})
            return 200, {k: v for k, v in variable.listed().items() if k != "value"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                if self.headers.get("Authorization") != f"Bearer {stand_in.token}":
                    status, answer = 403, _error("forbidden", "Not authorized")
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    try:
                        body = json.loads(self.rfile.read(length)) if length else None
                    except ValueError:
                        body = None
                    status, answer = stand_in.handle(self.command, parts.path, query, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the drill reports what matters."""

        return Handler


def _error(code: str, message: str) -> dict[str, Any]:
    """Vercel's error shape."""
    return {"error": {"code": code, "message": message}}
