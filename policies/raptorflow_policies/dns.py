"""Cloudflare rules: failover records move fast, and every hostname under failover has somewhere to go."""

from __future__ import annotations

from collections.abc import Iterable

from pulumi_policy import Severity

from ._base import DNS_RECORD, LOAD_BALANCER, resource_policy, stack_policy

FAILOVER_RECORD = "raptorflow:failover:FailoverRecord"
FAILOVER_LOAD_BALANCER = "raptorflow:failover:FailoverLoadBalancer"
TTL_CONFIG = {"maxTtlSeconds": {"type": "integer", "description": "Ceiling for DNS-only TTLs.", "default": 300}}


def _hostnames(resources) -> Iterable[tuple[dict, str]]:
    for resource in resources:
        if resource.resource_type == FAILOVER_RECORD:
            yield resource.props, resource.urn
        elif resource.resource_type == FAILOVER_LOAD_BALANCER:
            for host in resource.props.get("hostnames") or []:
                yield host, resource.urn


def failover_targets(resources) -> list[tuple[str, str]]:
    """(host, urn) for every hostname under failover and both of its targets."""
    targets = []
    for host, urn in _hostnames(resources):
        for key in ("fqdn", "primary", "standby"):
            if host.get(key):
                targets.append((host[key], urn))
    return targets


def _ttl(args, violate):
    if args.resource_type not in (DNS_RECORD, LOAD_BALANCER):
        return
    ttl, proxied = args.props.get("ttl"), bool(args.props.get("proxied"))
    ceiling = int(args.get_config().get("maxTtlSeconds", 300))
    if proxied and ttl not in (None, 1):
        violate(f"{args.name} is proxied but has TTL {ttl}; proxied records use 1 (auto)")
    if not proxied and (ttl is None or not 60 <= float(ttl) <= ceiling):
        violate(f"{args.name} is DNS-only with TTL {ttl}; failover records need 60-{ceiling} seconds")


failover_ttl = resource_policy(
    "raptorflow-cloudflare-failover-ttl",
    "DNS-only failover records use TTL <= 300 s; proxied records use TTL 1 (auto).",
    "Cloudflare TTL reference",
    Severity.MEDIUM,
    "set ttlSeconds between 60 and 300 for DNS-only hostnames; leave it unset for proxied ones",
    _ttl,
    config=TTL_CONFIG,
)


def _both_targets(args, violate):
    records = {r.props.get("name"): r for r in args.resources if r.resource_type == DNS_RECORD}
    for host, urn in _hostnames(args.resources):
        name = host.get("fqdn", "?")
        if not host.get("primary") or not host.get("standby"):
            violate(f"hostname {name} lacks a {'primary' if not host.get('primary') else 'standby'} target", urn)
        elif host["primary"] == host["standby"]:
            violate(f"hostname {name} has the same primary and standby target", urn)
        record = records.get(name)
        if record is not None and record.props.get("content") not in (host.get("primary"), host.get("standby")):
            violate(f"record {name} points at {record.props.get('content')}, neither of its targets", record.urn)


failover_hostname_targets = stack_policy(
    "raptorflow-failover-hostname-targets",
    "Every hostname under failover has both a primary and a standby target, and points at one of them.",
    "DR plan scenario 2",
    Severity.HIGH,
    "give the hostname distinct `primary` and `standby` targets in the failover config",
    _both_targets,
)

POLICIES = [failover_ttl, failover_hostname_targets]
