"""STAND-IN for Google Cloud Secret Manager's REST API (v1): the secrets a stack plan declares, their versions and
the calls that add, list, access and disable them. Not Google Cloud.

Used in tests and drills only: the stand-in Pulumi CLI adds a version when `pulumi up` replaces a
`gcp.secretmanager.SecretVersion` (tools/drill/pulumi_secrets.py), and `python -m tools.rotate` lists and
disables the old ones (tools/rotate_versions.py). The shapes follow
https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets.versions :

    POST /v1/projects/P/secrets/S:addVersion   {"payload": {"data": BASE64}}   -> SecretVersion (ENABLED)
    GET  /v1/projects/P/secrets/S/versions?pageSize=N&pageToken=T             -> {"versions": [...], "totalSize",
                                                                                  "nextPageToken" when more follow}
    GET  /v1/projects/P/secrets/S/versions/V:access                           -> {"name", "payload": {"data"}}
    POST /v1/projects/P/secrets/S/versions/V:disable                          -> SecretVersion (DISABLED)
    POST /v1/projects/P/secrets/S/versions/V:destroy                          -> SecretVersion (DESTROYED, data gone)

A SecretVersion is `{"name": "projects/P/secrets/S/versions/N", "createTime", "state"}`; versions are numbered
from 1 and listed newest first; `latest` names the newest version, and accessing a DISABLED one fails with
400 FAILED_PRECONDITION, as the API does. Every call needs `Authorization: Bearer TOKEN`. Errors have Google's
shape `{"error": {"code", "message", "status"}}`. A payload is never printed or logged.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

URL_VARIABLE = "SECRET_MANAGER_API_URL"
"""Where `tools.rotate` and the stand-in Pulumi CLI send Secret Manager calls (unset: the real API)."""
TOKEN_VARIABLE = "GOOGLE_OAUTH_ACCESS_TOKEN"
"""The bearer token (the Google provider's own variable for an OAuth access token)."""
HOST, PORT = "127.0.0.1", 8082
_ROUTE = re.compile(r"^/v1/projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/:]+)"
                    r"(?::(?P<secret_verb>addVersion)|/versions(?:/(?P<version>[^/:]+)(?::(?P<verb>access|disable|destroy))?)?)$")


@dataclass
class Version:
    """One version of a secret."""

    number: int
    data: bytes
    state: str = "ENABLED"
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z"))


class SecretManagerStandIn:
    """STAND-IN for Secret Manager: secrets by (project, secret id), each a list of versions, behind the REST API."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.secrets: dict[tuple[str, str], list[Version]] = {}
        self.calls: list[tuple[str, str, float]] = []  # (verb, version name, monotonic time) of each change
        self.lock = threading.Lock()
        self.page_cap = 25000
        """The most versions one page lists (the API caps pageSize at 25000; 0 or none: the server decides)."""

    def seed(self, project: str, secret: str, value: str) -> None:
        """A secret with its first version (what the stack's first `pulumi up` created)."""
        with self.lock:
            self.secrets[(project, secret)] = [Version(1, value.encode())]

    def states(self, project: str, secret: str) -> list[str]:
        """The states of a secret's versions, oldest first."""
        with self.lock:
            return [v.state for v in self.secrets[(project, secret)]]

    def payload(self, project: str, secret: str, number: int) -> str:
        """A version's data (tests compare it; never printed)."""
        with self.lock:
            return self.secrets[(project, secret)][number - 1].data.decode()

    def handle(self, method: str, path: str, body: Any, query: Mapping[str, str] | None = None,
               ) -> tuple[int, dict[str, Any]]:
        """(status, JSON) for one authorised request (`query`: its query parameters)."""
        match = _ROUTE.match(urllib.parse.unquote(path))
        if match is None:
            return _error(404, "NOT_FOUND", f"{method} {path} is not served by the stand-in")
        key = (match["project"], match["secret"])
        with self.lock:
            versions = self.secrets.get(key)
            if versions is None:
                return _error(404, "NOT_FOUND", f"Secret [projects/{key[0]}/secrets/{key[1]}] not found.")
            prefix = f"projects/{key[0]}/secrets/{key[1]}/versions/"
            if method == "POST" and match["secret_verb"] == "addVersion":
                data = ((body or {}).get("payload") or {}).get("data") if isinstance(body, dict) else None
                try:
                    decoded = base64.b64decode(str(data), validate=True)
                except ValueError:
                    return _error(400, "INVALID_ARGUMENT", "payload.data must be base64")
                versions.append(Version(len(versions) + 1, decoded))
                self.calls.append(("addVersion", prefix + str(len(versions)), time.monotonic()))
                return 200, _shown(prefix, versions[-1])
            if method == "GET" and match["version"] is None and match["secret_verb"] is None:
                listed = [_shown(prefix, v) for v in reversed(versions)]
                try:
                    start, size = int((query or {}).get("pageToken") or 0), int((query or {}).get("pageSize") or 0)
                except ValueError:
                    return _error(400, "INVALID_ARGUMENT", "pageSize and pageToken must be what the API gave")
                end = start + min(size or self.page_cap, self.page_cap)
                return 200, {"versions": listed[start:end], "totalSize": len(listed),
                             **({"nextPageToken": str(end)} if end < len(listed) else {})}
            number = len(versions) if match["version"] == "latest" else _number(match["version"])
            if number is None or not 1 <= number <= len(versions):
                return _error(404, "NOT_FOUND", f"Secret Version [{prefix}{match['version']}] not found.")
            version = versions[number - 1]
            if method == "GET" and match["verb"] == "access":
                if version.state != "ENABLED":
                    return _error(400, "FAILED_PRECONDITION",
                                  f"Secret Version [{prefix}{number}] is in {version.state} state.")
                return 200, {"name": prefix + str(number),
                             "payload": {"data": base64.b64encode(version.data).decode()}}
            if method == "POST" and match["verb"] in ("disable", "destroy"):
                if version.state == "DESTROYED":
                    return _error(400, "FAILED_PRECONDITION", f"Secret Version [{prefix}{number}] is DESTROYED.")
                version.state = "DISABLED" if match["verb"] == "disable" else "DESTROYED"
                version.data = version.data if match["verb"] == "disable" else b""
                self.calls.append((match["verb"], prefix + str(number), time.monotonic()))
                return 200, _shown(prefix, version)
        return _error(404, "NOT_FOUND", f"{method} {path} is not served by the stand-in")

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The HTTP handler class serving this stand-in."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {stand_in.token}":
                    status, answer = _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    try:
                        body = json.loads(self.rfile.read(length)) if length else None
                    except ValueError:
                        body = None
                    url = urllib.parse.urlsplit(self.path)
                    status, answer = stand_in.handle(self.command, url.path, body, dict(urllib.parse.parse_qsl(url.query)))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: never a payload in a log."""

        return Handler


def serve(stand_in: SecretManagerStandIn, address: tuple[str, int]) -> ThreadingHTTPServer:
    """Serve the stand-in on `address` from a daemon thread (tests; the drill serves it in rfdr-net)."""
    server = ThreadingHTTPServer(address, stand_in.handler())
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                     name="rfdr-secret-manager-stand-in").start()
    return server


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def _shown(prefix: str, version: Version) -> dict[str, Any]:
    return {"name": prefix + str(version.number), "createTime": version.created, "state": version.state}


def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "message": message, "status": status}}
