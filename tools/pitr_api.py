"""The Supabase Management API calls of `python -m tools.pitr` (see its docstring for the endpoints and the docs
they follow), its exit codes, and the receipts that make it safe to run twice."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, EXIT_REFUSED, EXIT_API, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
REQUEST_TIMEOUT_SECONDS = 30.0


class Failure(Exception):
    """One line for the operator and the exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Api:
    """The Management API calls this command makes."""

    def __init__(self, base_url: str, token: str, ref: str) -> None:
        self.base, self.token, self.ref = base_url.rstrip("/"), token, ref

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """(status, JSON body or None); a network failure or an error status is a Failure (exit 4)."""
        request = urllib.request.Request(f"{self.base}/v1/projects/{self.ref}{path}", method=method,  # noqa: S310
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:  # noqa: S310
                data = response.read()
                return response.status, json.loads(data) if data.strip() else None
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())
        except (OSError, ValueError) as exc:
            raise Failure(EXIT_API, f"{method} {path or '/'} did not answer: {type(exc).__name__}: "
                                    f"{str(getattr(exc, 'reason', exc))[:200]}") from None

    def get(self, path: str) -> dict[str, Any]:
        """A GET that must answer 200 with an object."""
        status, body = self.call("GET", path)
        if status != 200 or not isinstance(body, dict):
            raise Failure(EXIT_API, f"GET /v1/projects/{self.ref}{path} answered {status}: {message(body)}")
        return body

    def status(self) -> str:
        """The project's status."""
        return str(self.get("").get("status"))


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def message(body: Any) -> str:
    return str(body.get("message") or body.get("error") or body)[:300] if isinstance(body, dict) else "(no JSON body)"


class Receipts:
    """The record of the restores this command requested, one file per project."""

    def __init__(self, folder: Path, ref: str) -> None:
        self.path = folder / f"{ref}.json"

    def read(self) -> dict[str, Any] | None:
        """The receipt, or None."""
        try:
            found = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return found if isinstance(found, dict) else None

    def write(self, receipt: dict[str, Any]) -> None:
        """Replace the receipt (atomically)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".json.part")
        partial.write_text(json.dumps(receipt, indent=2) + "\n")
        partial.replace(self.path)

    def remove(self) -> None:
        """No receipt (a request that was never answered)."""
        self.path.unlink(missing_ok=True)


