"""The small world the monitor stand-in's tests run against (tests/drill/test_monitor.py): HTTP apps on
127.0.0.1, the repo's dr plan cut down to two failover names, a resolver answering from the plan's own DNS
records, and the plan's figures read straight from its resources (never from the monitor).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from core.contracts import Label, ResourceType
from tools.drill import dns, plans
from tools.drill.monitor import Page
from tools.drill.uptime import UptimePolicy

HANG_SECONDS = 5.0
"""How long a silent app holds a request before letting it go without an answer."""


class App:
    """A small app on 127.0.0.1: answers every GET with `status`, or, when `silent`, accepts and never answers.
    Records each request's path and Host header."""

    def __init__(self) -> None:
        self.status = 200
        self.silent = threading.Event()
        self.released = threading.Event()
        self.requests: list[tuple[str, str, str]] = []
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                app.requests.append(("GET", self.path, self.headers.get("Host", "")))
                if app.silent.is_set():
                    app.released.wait(HANG_SECONDS)
                    return
                self.send_response(app.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """Where it listens."""
        return "127.0.0.1", int(self.server.server_address[1])

    def close(self) -> None:
        """Stop serving; release hanging requests."""
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def inputs(plan: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The inputs of the plan's resources of one type."""
    return [r["inputs"] for r in plans.resources(plan, kind)]


def dr_fragment(dr: dict[str, Any]) -> dict[str, Any]:
    """The dr plan's uptime checks, uptime alerts, failover and DNS records of two failover names: the first
    whose targets are IPs and the first whose targets are names."""
    records = inputs(dr, ResourceType.FAILOVER_RECORD)
    by_ip = next(r for r in records if r["primary"][0].isdigit())
    by_name = next(r for r in records if not r["primary"][0].isdigit())
    hosts = {r[key] for r in (by_ip, by_name) for key in ("fqdn", "primary", "standby")}
    targets = {r["inputs"]["userLabels"][Label.TARGET] for r in plans.resources(dr, ResourceType.UPTIME_CHECK)
               if r["inputs"]["monitoredResource"]["labels"]["host"] in hosts}

    def kept(resource: dict[str, Any]) -> bool:
        inputs = resource["inputs"]
        if resource["type"] in (ResourceType.UPTIME_CHECK, ResourceType.ALERT_POLICY):
            return (inputs.get("userLabels") or {}).get(Label.TARGET) in targets
        if resource["type"] == ResourceType.FAILOVER_RECORD:
            return inputs["fqdn"] in hosts
        return resource["type"] == ResourceType.DNS_RECORD and inputs["name"] in hosts

    return copy.deepcopy({"stack": dr["stack"], "resources": [r for r in dr["resources"] if kept(r)]})


def plan_resolver(plan: dict[str, Any]) -> Callable[[str], dns.Answer]:
    """Answers as the drill's DNS would from the plan's records: the CNAME chain, and the address of an A record."""
    records = {r["name"]: r for r in inputs(plan, ResourceType.DNS_RECORD)}

    def resolve(name: str) -> dns.Answer:
        chain: list[tuple[str, str, str, int]] = []
        address = None
        while name in records and len(chain) < 8:
            record = records[name]
            data = record["content"] + ("." if record["type"] == "CNAME" else "")
            chain.append((name + ".", record["type"], data, dns.served_ttl(record)))
            if record["type"] != "CNAME":
                address = record["content"]
            name = record["content"]
        return dns.Answer(tuple(chain), address)

    return resolve


def site_of_target(plan: dict[str, Any]) -> dict[str, str]:
    """Which site each check's target leads to, read from the plan's failover and DNS records."""
    sites = plans.failover_targets(plan)
    public = {r["fqdn"]: sites[r["primary"] if r["activeSite"] == "primary" else r["standby"]]
              for r in inputs(plan, ResourceType.FAILOVER_RECORD)}
    return {c["userLabels"][Label.TARGET]: sites.get(c["monitoredResource"]["labels"]["host"])
            or public[c["monitoredResource"]["labels"]["host"]] for c in inputs(plan, ResourceType.UPTIME_CHECK)}


def severity(plan: dict[str, Any], target: str) -> str:
    """The severity label of the plan's uptime alert on `target`."""
    return next(p["userLabels"][Label.SEVERITY] for p in inputs(plan, ResourceType.ALERT_POLICY)
                if p["userLabels"][Label.TARGET] == target)


def plan_seconds(plan: dict[str, Any], page_or_policy: Page | UptimePolicy) -> tuple[float, float, float]:
    """The period and timeout of the check, and the duration of the alert, that the plan gives the policy."""
    policy = next(p for p in inputs(plan, ResourceType.ALERT_POLICY) if p["displayName"] == (
        page_or_policy.policy if isinstance(page_or_policy, Page) else page_or_policy.name))
    check = next(c for c in inputs(plan, ResourceType.UPTIME_CHECK)
                 if c["userLabels"][Label.TARGET] == policy["userLabels"][Label.TARGET])
    figures = (check["period"], check["timeout"], policy["conditions"][0]["conditionThreshold"]["duration"])
    period, timeout, duration = (float(figure.rstrip("s")) for figure in figures)
    return period, timeout, duration
