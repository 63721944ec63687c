"""Traffic failover on the dr plan: records, load balancers, Vercel env and the promotion flip."""

from __future__ import annotations

import http.server
import os
from typing import ClassVar

import pytest

from components import defaults
from components.config import FailoverHostname
from core.limits import DNS_TTL_MAX_SECONDS, DNS_TTL_MIN_SECONDS
from tests.services import serving
from tools.failover import diff_plans, wait_healthy
from tools.offline import is_secret

DNS = "cloudflare:index/dnsRecord:DnsRecord"
LB = "cloudflare:index/loadBalancer:LoadBalancer"
POOL = "cloudflare:index/loadBalancerPool:LoadBalancerPool"
MONITOR = "cloudflare:index/loadBalancerMonitor:LoadBalancerMonitor"
VERCEL = "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable"
SCHEDULE = "gcp:cloudscheduler/job:Job"
ALERT = "gcp:monitoring/alertPolicy:AlertPolicy"
LB_MODE = ("raptorflow-dr:standby.failover.mode=loadBalancer",
           "raptorflow-dr:standby.failover.loadBalancer.accountId=0123456789abcdef0123456789abcdef")


def _hostnames() -> dict:
    import yaml

    from tools.offline import ROOT
    config = yaml.safe_load((ROOT / "Pulumi.dr.yaml").read_text())["config"]
    return {h["name"]: h for h in config["raptorflow-dr:standby"]["failover"]["hostnames"]}


def test_promotion_changes_only_the_traffic_switch_in_place(make_plan):
    before = make_plan("dr", "raptorflow-dr:promoted=false")
    after = make_plan("dr", "raptorflow-dr:promoted=true")
    assert {r.urn for r in before.resources} == {r.urn for r in after.resources}, "a flip must not create or delete"
    diff = diff_plans(before, after)
    assert diff.safe
    assert {c.type for c in diff.changed} == {DNS, VERCEL, SCHEDULE, ALERT, "raptorflow:failover:FailoverRecord"}, \
        "only the switch, the standby schedules and the alerting that follows the active site"
    for change in diff.changed:
        if change.type == ALERT:
            assert {key.split(".")[0] for key in change.changes} <= {"displayName", "severity", "enabled",
                                                                     "userLabels", "documentation"}
    assert {c.name for c in diff.changed if c.type == SCHEDULE} == {"db-backup-full-schedule",
                                                                     "db-backup-schema-schedule"}


def test_every_hostname_moves_from_its_primary_to_its_standby_target(make_plan):
    hosts = _hostnames()
    for promoted, site in (("false", "primary"), ("true", "standby")):
        plan = make_plan("dr", f"raptorflow-dr:promoted={promoted}")
        records = {r.inputs["name"]: r.inputs for r in plan.of_type(DNS)}
        assert len(records) == len(hosts)
        for name, host in hosts.items():
            fqdn = "raptorflow.app" if name == "@" else f"{name}.raptorflow.app"
            assert records[fqdn]["content"] == host[site], f"{fqdn} should point at its {site} target"


def test_record_ttls_follow_cloudflare_rules(dr_plan):
    for record in dr_plan.of_type(DNS):
        if record.inputs["proxied"]:
            assert record.inputs["ttl"] == 1, f"{record.name}: proxied records use TTL 1 (auto)"
        else:
            assert DNS_TTL_MIN_SECONDS <= record.inputs["ttl"] <= DNS_TTL_MAX_SECONDS, \
                f"{record.name}: DNS-only TTL must be {DNS_TTL_MIN_SECONDS}-{DNS_TTL_MAX_SECONDS}"


def test_load_balancer_mode_puts_the_active_site_first(make_plan):
    for promoted, first, fallback in (("false", "primary", "standby"), ("true", "standby", "primary")):
        plan = make_plan("dr", f"raptorflow-dr:promoted={promoted}", *LB_MODE)
        assert not plan.of_type(DNS), "load-balancer mode replaces the plain records"
        pools = {r.inputs["name"]: r for r in plan.of_type(POOL)}
        pool_ids = {name: f"{r.name}-id" for name, r in pools.items()}
        balancers = plan.of_type(LB)
        assert len(balancers) == 4
        assert len(pools) == 8, "a pool per hostname and site"
        for balancer in balancers:
            slug = balancer.name.removeprefix("traffic-")
            assert balancer.inputs["defaultPools"] == [pool_ids[f"raptorflow-{slug}-{first}"],
                                                       pool_ids[f"raptorflow-{slug}-{fallback}"]]
            assert balancer.inputs["fallbackPool"] == pool_ids[f"raptorflow-{slug}-{fallback}"]


def test_each_load_balancer_reaches_only_its_own_hostnames_origins(make_plan):
    plan = make_plan("dr", *LB_MODE)
    pool_by_id = {f"{r.name}-id": r for r in plan.of_type(POOL)}
    hosts = {h["fqdn"]: h for h in plan.named("traffic").inputs["hostnames"]}
    for balancer in plan.of_type(LB):
        host = hosts[balancer.inputs["name"]]
        addresses = {origin["address"] for pool_id in balancer.inputs["defaultPools"]
                     for origin in pool_by_id[pool_id].inputs["origins"]}
        assert addresses == {host["primary"], host["standby"]}, f"{balancer.name} can reach {addresses}"
        (monitor,) = plan.of_type(MONITOR)
        assert (monitor.inputs["type"], monitor.inputs["method"], monitor.inputs["path"],
                monitor.inputs["expectedCodes"]) == ("https", "GET", "/health", "200")
        assert (monitor.inputs["interval"], monitor.inputs["retries"]) == \
            (defaults.LB_MONITOR_INTERVAL_SECONDS, defaults.LB_MONITOR_RETRIES)


def test_load_balancer_flip_is_in_place_too(make_plan):
    diff = diff_plans(make_plan("dr", "raptorflow-dr:promoted=false", *LB_MODE),
                      make_plan("dr", "raptorflow-dr:promoted=true", *LB_MODE))
    assert diff.safe and LB in {c.type for c in diff.changed}


def test_vercel_values_switch_and_secrets_are_sensitive(make_plan):
    for promoted, region in (("false", "primary-region"), ("true", "backup-region")):
        plan = make_plan("dr", f"raptorflow-dr:promoted={promoted}")
        variables = {r.inputs["key"]: r.inputs for r in plan.of_type(VERCEL)}
        assert variables["REGION"]["value"]["value"] == region
        assert variables["REGION"]["sensitive"] is False
        secret = variables["SUPABASE_SERVICE_ROLE_KEY"]
        assert secret["sensitive"] is True and is_secret(secret["value"])
        assert all(v["targets"] == ["production"] for v in variables.values())


def test_prod_owns_no_part_of_the_traffic_switch(prod_plan):
    assert not [r for r in prod_plan.resources if r.type in (DNS, LB, POOL, MONITOR, VERCEL)]


BAD = [
    ({"name": "www", "state": "new", "type": "CNAME", "proxied": True, "ttlSeconds": 300, "primary": "a.example.com",
      "standby": "b.example.com"}, "proxied records have TTL 1 (auto)"),
    ({"name": "api", "state": "new", "type": "CNAME", "proxied": False, "ttlSeconds": DNS_TTL_MIN_SECONDS // 2,
      "primary": "a.example.com", "standby": "b.example.com"},
     f"ttlSeconds {DNS_TTL_MIN_SECONDS // 2} is outside {DNS_TTL_MIN_SECONDS}-{DNS_TTL_MAX_SECONDS}"),
    ({"name": "app", "state": "new", "type": "CNAME", "primary": "a.example.com"}, "standby: Field required"),
    ({"name": "@", "state": "new", "type": "A", "primary": "203.0.113.300", "standby": "198.51.100.1"},
     "primary '203.0.113.300' is not an IPv4 address"),
]


@pytest.mark.parametrize("hostname, expected", BAD, ids=["proxied-ttl-300", "ttl-below-minimum", "no-standby", "bad-ipv4"])
def test_bad_failover_hostnames_are_config_errors(run_cli, stack_file, hostname, expected):
    path = stack_file("dr", lambda c: c["raptorflow-dr:standby"]["failover"].update(hostnames=[hostname]))
    result = run_cli("tools.plan", "dr", "--stack-file", str(path))
    assert result.returncode == 2, result.stdout
    assert "raptorflow-dr:standby.failover.hostnames.0" in result.stderr and expected in result.stderr


def test_prod_may_not_own_dns(run_cli, stack_file):
    import yaml

    from tools.offline import ROOT
    dr = yaml.safe_load((ROOT / "Pulumi.dr.yaml").read_text())["config"]
    path = stack_file("prod", lambda c: c.update({"raptorflow-dr:standby": dr["raptorflow-dr:standby"]}))
    result = run_cli("tools.plan", "prod", "--stack-file", str(path))
    assert result.returncode == 2 and "`standby.failover`" in result.stderr
    assert "belong to a standby stack; a primary stack must not set them" in result.stderr
    assert "the dr stack owns the traffic switch" in result.stderr


def test_default_dns_only_ttl_is_the_fast_minimum():
    host = FailoverHostname(name="api", state="new", proxied=False, primary="a.example.com", standby="b.example.com")
    assert host.ttl == DNS_TTL_MIN_SECONDS


def test_diff_cli_reports_each_change_and_that_nothing_is_replaced(run_cli):
    result = run_cli("tools.failover", "diff")
    assert result.returncode == 0, result.stderr
    assert "content: api-us.raptorflow.app -> api-eu.raptorflow.app" in result.stdout
    assert "value: primary-region -> backup-region" in result.stdout
    assert "paused: True -> False" in result.stdout
    assert "nothing is created, replaced or deleted" in result.stdout
    assert "v1:" not in result.stdout, "ciphertexts or secrets must not be printed"


def test_promote_without_the_pulumi_cli_fails_clearly():
    import subprocess
    import sys

    from tools.offline import ROOT
    env = {**os.environ, "PATH": os.path.dirname(sys.executable)}
    result = subprocess.run([sys.executable, "-m", "tools.failover", "promote", "--stack", "dr"],
                            cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "the Pulumi CLI is not installed" in result.stderr and "Traceback" not in result.stderr


class _Health(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[int]] = []

    def do_GET(self):
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    with serving(_Health) as server:
        yield server


def test_health_wait_reports_when_each_endpoint_turned_healthy(health_server):
    _Health.answers = [503, 503]
    port = health_server.server_address[1]
    healthy, missing = f"http://127.0.0.1:{port}/health", f"http://127.0.0.1:{port}/nope"
    results = {r.url: r for r in wait_healthy([healthy, missing], timeout_seconds=1.0, interval_seconds=0.05)}
    assert results[healthy].healthy_after_seconds is not None and results[healthy].last_status == "200"
    assert results[missing].healthy_after_seconds is None and results[missing].last_status == "404"
    assert _Health.answers == [], "the endpoint answered 503 twice before it was healthy"


def test_health_wait_gives_up_at_the_timeout_on_a_dead_endpoint():
    from tests.services import free_port

    ticks = iter(range(100))
    (result,) = wait_healthy([f"http://127.0.0.1:{free_port()}/health"], timeout_seconds=3,
                             interval_seconds=0, clock=lambda: next(ticks), sleep=lambda _: None)
    assert result.healthy_after_seconds is None and result.last_status in ("ConnectionRefusedError", "URLError")


def test_load_balancer_mode_passes_the_pack_on_a_standby_not_yet_promoted(run_cli):
    # Its backups stay paused until promotion, as in dns mode: the pack reads the active site from the component.
    result = run_cli("tools.plan", "dr", *[arg for pair in LB_MODE for arg in ("--set", pair)])
    assert result.returncode == 0, result.stdout[-2000:]
    assert "0 violations (0 mandatory) in stack dr" in result.stdout
