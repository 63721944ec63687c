"""Wait for health endpoints: poll each URL until it answers 200 or the time is up, and say when each first did."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class HealthResult:
    """How one endpoint answered while we waited for it."""

    url: str
    healthy_after_seconds: float | None
    last_status: str


def probe(url: str, timeout_seconds: float) -> str:
    """One GET: '200' or the status code or error seen."""
    try:
        request = urllib.request.Request(url, method="GET")  # noqa: S310 - the stack's own health URLs
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (urllib.error.URLError, OSError) as exc:
        return type(getattr(exc, "reason", exc)).__name__


def wait_healthy(
    urls: list[str],
    timeout_seconds: float,
    interval_seconds: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[HealthResult]:
    """Poll every URL until it answers 200 or `timeout_seconds` pass; report when each first did."""
    started = clock()
    results = {url: HealthResult(url, None, "not tried") for url in urls}
    while True:
        for url, result in results.items():
            if result.healthy_after_seconds is None:
                result.last_status = probe(url, min(10.0, max(1.0, interval_seconds)))
                if result.last_status == "200":
                    result.healthy_after_seconds = round(clock() - started, 2)
        if all(r.healthy_after_seconds is not None for r in results.values()) or clock() - started >= timeout_seconds:
            return list(results.values())
        sleep(interval_seconds)
