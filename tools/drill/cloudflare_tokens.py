"""STAND-IN for Cloudflare's user API token calls that `python -m tools.rotate` makes (tools/rotate_tokens.py): not
Cloudflare. Used in tests only.

    GET /client/v4/user/tokens/verify              {"result": {"id", "status": "active"}} for a valid token
    PUT /client/v4/user/tokens/ID/value  {}        {"result": NEW_VALUE}: the token rolled, the old value invalid

Shapes as https://developers.cloudflare.com/api/resources/user/subresources/tokens/subresources/value/methods/update
and .../tokens/methods/verify give them (`{"success", "errors", "messages", "result"}`). A token may roll itself only
when it was issued with "API Tokens Write" (`can_roll`); otherwise 403, as Cloudflare answers. Nothing is logged.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

API_PATH = "/client/v4"
_ROLL = re.compile(rf"^{API_PATH}/user/tokens/(?P<id>[0-9a-f]+)/value$")


class CloudflareTokens:
    """STAND-IN for Cloudflare's API tokens: id -> (current value, may it roll itself)."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, bool]] = {}
        self.lock = threading.Lock()
        # For tests: `rolled` is set once a token has rolled, and the roll's answer waits until `answer` is set
        # (it is, unless a test clears it to interrupt a client between the roll and its answer).
        self.rolled, self.answer = threading.Event(), threading.Event()
        self.answer.set()

    def issue(self, can_roll: bool) -> str:
        """A new token; its value."""
        value = secrets.token_urlsafe(30)
        with self.lock:
            self.tokens[secrets.token_hex(16)] = (value, can_roll)
        return value

    def valid(self, value: str) -> bool:
        """Whether `value` is a token's current value."""
        with self.lock:
            return any(current == value for current, _ in self.tokens.values())

    def handle(self, method: str, path: str, bearer: str) -> tuple[int, dict[str, Any]]:
        """(status, JSON) of one request."""
        with self.lock:
            found = next((token_id for token_id, (value, _) in self.tokens.items() if value == bearer), None)
            if found is None:
                return 401, _answer(None, [{"code": 1000, "message": "Invalid API Token"}])
            if method == "GET" and path == f"{API_PATH}/user/tokens/verify":
                return 200, _answer({"id": found, "status": "active"})
            match = _ROLL.match(path)
            if method == "PUT" and match:
                if match["id"] != found or not self.tokens[found][1]:
                    return 403, _answer(None, [{"code": 9109, "message": "Unauthorized to access requested resource"}])
                new = secrets.token_urlsafe(30)
                self.tokens[found] = (new, True)
            else:
                return 404, _answer(None, [{"code": 7000, "message": "No route for that URI"}])
        self.rolled.set()
        self.answer.wait(timeout=60)
        return 200, _answer(new)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The HTTP handler class serving this stand-in."""
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                bearer = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                status, answer = stand_in.handle(self.command, self.path.split("?")[0], bearer)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(data)

            do_GET = do_PUT = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        return Handler


def _answer(result: Any, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"success": not errors, "errors": errors or [], "messages": [], "result": result}
