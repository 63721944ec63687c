"""One checker region of the monitor stand-in (tools/drill/monitor.py): how it finds the app a check's host
leads to, and one probe, as Cloud Monitoring's checkers send it.

A host that is a failover target's name or IP is its site's app. A public name is asked of the drill's DNS as
a client would (each region's resolver keeps an answer for its TTL divided by the time scale); the site is
the failover target its answer leads to. The drill's apps speak plain HTTP on one port, so a check's `port`
and `useSsl` map to that.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tools.drill import dns
from tools.drill.uptime import UptimeCheck


@dataclass(frozen=True)
class Probe:
    """One probe of one check from one region."""

    check: str
    """The check's resource name."""
    region: str
    passed: bool
    started: float
    """time.monotonic() when the request was sent."""
    finished: float
    """time.monotonic() when it ended: the point's time."""
    detail: str
    """`HTTP 200`, `timeout`, `no DNS answer`..."""


class Resolver:
    """One checker region's resolver: answers kept for their TTL divided by the time scale."""

    def __init__(self, resolve: Callable[[str], dns.Answer], time_scale: float) -> None:
        self.resolve, self.time_scale = resolve, time_scale
        self.cache: dict[str, tuple[dns.Answer, float]] = {}

    def answer(self, name: str) -> dns.Answer:
        """The answer for `name`, from the cache while its TTL lasts (a negative answer is asked again)."""
        cached = self.cache.get(name)
        if cached and time.monotonic() < cached[1]:
            return cached[0]
        answer = self.resolve(name)
        if answer.chain:
            self.cache[name] = (answer, time.monotonic() + answer.ttl / self.time_scale)
        return answer


def endpoint(check: UptimeCheck, sites: Mapping[str, str], endpoints: Mapping[str, tuple[str, int]],
             resolver: Resolver) -> tuple[str, int] | str:
    """The (address, port) of the app the check's host leads to, or why none."""
    site = sites.get(check.host)
    if site is None:
        answer = resolver.answer(check.host)
        if not answer.chain:
            return "no DNS answer"
        led_to = [entry[2].rstrip(".") for entry in answer.chain] + [answer.address or ""]
        site = next((sites[name] for name in led_to if name in sites), None)
        if site is None:
            return f"{check.host} leads to no failover target ({answer.address})"
    return endpoints[site]


def probe(check: UptimeCheck, region: str, target: tuple[str, int] | str, timeout: float) -> Probe:
    """One request of the check to `target` (or a failed probe saying why there is none), failed unless an
    accepted status arrives within `timeout` wall seconds."""
    started = time.monotonic()

    def ended(passed: bool, detail: str) -> Probe:
        return Probe(check.name, region, passed, started, time.monotonic(), detail)

    if isinstance(target, str):
        return ended(False, target)
    connection = http.client.HTTPConnection(*target, timeout=timeout)
    try:
        connection.connect()
        assert connection.sock is not None
        # The timeout bounds the whole probe, not each socket operation.
        connection.sock.settimeout(max(0.01, started + timeout - time.monotonic()))
        connection.request(check.method, check.path, headers={"Host": check.host_header})
        response = connection.getresponse()
        response.read()
    except TimeoutError:
        return ended(False, "timeout")
    except (OSError, http.client.HTTPException) as exc:
        return ended(False, type(exc).__name__)
    finally:
        connection.close()
    if time.monotonic() - started > timeout:
        return ended(False, "timeout")
    return ended(check.accepts(response.status), f"HTTP {response.status}")
