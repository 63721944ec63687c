"""Redeploy a Vercel project's production deployment through Vercel's REST API, and wait until it is READY.

Vercel applies env var changes only to deployments made after them: the failover flips the project's
variables, and a redeploy is what makes the running app use them. The calls (bearer token, each with a
timeout, no redirects followed, `teamId` on every one when the project belongs to a team):

- the deployment to redeploy, the newest READY production one:
  `GET /v6/deployments?projectId=P&target=production&state=READY&limit=1`
  (https://vercel.com/docs/rest-api/deployments/list-deployments; each item's id is `uid`);
- the redeploy: `POST /v13/deployments` with `{"name", "project", "deploymentId", "target": "production"}`
  (https://vercel.com/docs/rest-api/deployments/create-a-new-deployment: "a deployment id can be specified
  to redeploy a previous deployment"; `name` is required, `project` overrides it as the project);
- its progress: `GET /v13/deployments/ID`
  (https://vercel.com/docs/rest-api/deployments/get-a-deployment-by-id-or-url): `readyState` QUEUED,
  INITIALIZING, BUILDING, then READY - or ERROR or CANCELED.

The token is `VERCEL_TOKEN` when set, else the stack's `vercel:apiToken` (the Vercel provider's own, read
through the Automation API, which has the CLI decrypt it). `VERCEL_API_URL` replaces https://api.vercel.com
for a stand-in (tests, drills); plain http is accepted only to the loopback address. Nothing this module
prints or raises contains the token.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_API_URL = "https://api.vercel.com"
API_URL_VARIABLE = "VERCEL_API_URL"
TOKEN_VARIABLE = "VERCEL_TOKEN"
TOKEN_CONFIG_KEY = "vercel:apiToken"
REQUEST_TIMEOUT_SECONDS = 15.0
MAX_RESPONSE_BYTES = 1_000_000
READY, FAILED = "READY", ("ERROR", "CANCELED")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class VercelError(Exception):
    """A Vercel API call or deployment that failed, in one line without the token. `transient`: worth asking
    again (no answer, 429, 5xx)."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient


def api_url(environ: Mapping[str, str] = os.environ) -> str:
    """The API's base URL: $VERCEL_API_URL or https://api.vercel.com; VercelError unless https (or http to
    the loopback address), so the token never travels in the clear."""
    return checked_url(API_URL_VARIABLE, DEFAULT_API_URL, environ)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following one would send the token to wherever it points."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def checked_url(variable: str, default: str, environ: Mapping[str, str] = os.environ) -> str:
    """An API's base URL: $`variable` or `default`; VercelError unless https (or http to the loopback address),
    so a token never travels in the clear."""
    url = environ.get(variable) or default
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)):
        raise VercelError(f"{variable}={url} is not an https:// URL (plain http only to 127.0.0.1 or localhost)")
    return url.rstrip("/")


@dataclass(frozen=True)
class VercelApi:
    """Vercel's REST API for one team (or a personal account: `team_id` None); with `label` "Cloudflare" and
    no team, any JSON API that takes a bearer token (tools.adopt reads Cloudflare records through it)."""

    token: str
    team_id: str | None
    base_url: str = DEFAULT_API_URL
    label: str = "Vercel"

    def call(self, method: str, path: str, query: Mapping[str, str] | None = None, body: Any = None,
             timeout: float = REQUEST_TIMEOUT_SECONDS) -> dict[str, Any]:
        """One request; its JSON object, or VercelError."""
        params = {**(query or {}), **({"teamId": self.team_id} if self.team_id else {})}
        url = self.base_url + path + (f"?{urllib.parse.urlencode(params)}" if params else "")
        request = urllib.request.Request(  # noqa: S310 - https, or http to the loopback address (api_url)
            url, data=None if body is None else json.dumps(body).encode(), method=method,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                     "Content-Type": "application/json"})
        where = f"{method} {path}"
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            raise VercelError(self._clean(f"{self.label} API {where} answered {exc.code}: {_error_message(exc)}"),
                              transient=exc.code == 429 or exc.code >= 500) from None
        except (urllib.error.URLError, OSError) as exc:  # refused, unresolvable, timed out
            reason = getattr(exc, "reason", exc)
            raise VercelError(self._clean(f"{self.label} API {where} unanswered: {type(reason).__name__}: {reason}"),
                              transient=True) from None
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise VercelError(f"{self.label} API {where} answered something other than a JSON object")
        return document

    def _clean(self, text: str) -> str:
        return " ".join(text.replace(self.token, "[token]").split())[:400] if self.token else text


def _error_message(exc: urllib.error.HTTPError) -> str:
    """Vercel's `{"error": {"code", "message"}}`, else the HTTP reason."""
    try:
        error = json.loads(exc.read(64_000)).get("error") or {}
        return str(error.get("message") or error.get("code") or exc.reason)[:200]
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)[:200]


@dataclass(frozen=True)
class Deployment:
    """A deployment as the API names it."""

    id: str
    name: str
    ready_state: str


def production_deployment(api: VercelApi, project_id: str) -> Deployment:
    """The project's newest READY production deployment: what the redeploy builds again."""
    document = api.call("GET", "/v6/deployments", {"projectId": project_id, "target": "production",
                                                   "state": READY, "limit": "1"})
    found = document.get("deployments")
    if not isinstance(found, list) or not found or not isinstance(found[0], dict):
        raise VercelError(f"Vercel project {project_id} has no READY production deployment to redeploy; deploy "
                          "it once (`vercel deploy --prod`) and run the same command again")
    newest = found[0]
    uid, name = newest.get("uid") or newest.get("id"), newest.get("name")
    if not uid or not name:
        raise VercelError("Vercel API GET /v6/deployments answered a deployment without `uid` and `name`")
    return Deployment(str(uid), str(name), str(newest.get("readyState") or newest.get("state") or READY))


def redeploy(api: VercelApi, project_id: str, source: Deployment) -> Deployment:
    """A new production deployment of `source`'s build input, made with the project's env vars as they are now."""
    document = api.call("POST", "/v13/deployments", body={
        "name": source.name, "project": project_id, "deploymentId": source.id, "target": "production"})
    if not document.get("id"):
        raise VercelError("Vercel API POST /v13/deployments answered no deployment `id`")
    return Deployment(str(document["id"]), str(document.get("name") or source.name),
                      str(document.get("readyState") or "QUEUED"))


def wait_ready(api: VercelApi, deployment_id: str, deadline: float, interval_seconds: float,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
    """Poll the deployment until READY; VercelError when it ends ERROR or CANCELED, or at `deadline` (clock
    time). An unanswered poll (network, 429, 5xx) is asked again: a build takes minutes."""
    last = "not asked"
    path = f"/v13/deployments/{urllib.parse.quote(deployment_id, safe='')}"
    while True:
        try:
            document = api.call("GET", path, timeout=max(1.0, min(REQUEST_TIMEOUT_SECONDS, deadline - clock())))
            last = str(document.get("readyState") or "no readyState")
        except VercelError as exc:
            if not exc.transient:
                raise
            last = str(exc)
            document = {}
        if last == READY:
            return
        if last in FAILED:
            why = str(document.get("errorMessage") or document.get("errorCode") or "")[:200]
            raise VercelError(f"Vercel deployment {deployment_id} ended {last}" + (f" ({why})" if why else "") +
                              f"; its build log: `vercel inspect {deployment_id} --logs`")
        if clock() >= deadline:
            raise VercelError(f"Vercel deployment {deployment_id} was not READY in time (last: {last}); it may "
                              "still finish - `vercel inspect " + deployment_id + "`")
        sleep(max(0.0, min(interval_seconds, deadline - clock())))


def token(environ: Mapping[str, str], stack: Any) -> str:
    """$VERCEL_TOKEN, else the stack's `vercel:apiToken` through the Automation API; VercelError if neither."""
    if environ.get(TOKEN_VARIABLE):
        return environ[TOKEN_VARIABLE]
    from pulumi import automation as auto

    try:
        value = str(stack.get_config(TOKEN_CONFIG_KEY).value or "")
    except auto.errors.CommandError:
        value = ""
    if not value:
        raise VercelError(f"no Vercel token: the stack has no {TOKEN_CONFIG_KEY} (`pulumi config set --secret "
                          f"{TOKEN_CONFIG_KEY} --stack STACK`) and {TOKEN_VARIABLE} is not set")
    return value
