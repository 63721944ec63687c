"""DNS-only failover records move fast (TTL within the plan's bounds); proxied records use TTL 1 (auto)."""

from __future__ import annotations

from pulumi_policy import Severity

from core.limits import DNS_TTL_MAX_SECONDS, DNS_TTL_MIN_SECONDS

from .._base import DNS_RECORD, LOAD_BALANCER, Weakening, number, resource_policy

CONFIG = {"maxTtlSeconds": {"type": "integer", "description": "Ceiling for DNS-only TTLs.", "default": DNS_TTL_MAX_SECONDS}}


def _check(args, violate):
    if args.resource_type not in (DNS_RECORD, LOAD_BALANCER):
        return
    ttl, proxied = args.props.get("ttl"), bool(args.props.get("proxied"))
    ceiling = int(args.get_config().get("maxTtlSeconds", DNS_TTL_MAX_SECONDS))
    if proxied and ttl not in (None, 1):
        violate(f"{args.name} is proxied but has TTL {ttl}; proxied records use 1 (auto)")
    if not proxied and (number(ttl) is None or not DNS_TTL_MIN_SECONDS <= (number(ttl) or 0) <= ceiling):
        violate(f"{args.name} is DNS-only with TTL {ttl}; failover records need {DNS_TTL_MIN_SECONDS}-{ceiling} seconds")


POLICY = resource_policy(
    "raptorflow-cloudflare-failover-ttl",
    f"DNS-only failover records use TTL <= {DNS_TTL_MAX_SECONDS} s; proxied records use TTL 1 (auto).",
    "Cloudflare TTL reference",
    Severity.MEDIUM,
    f"set ttlSeconds between {DNS_TTL_MIN_SECONDS} and {DNS_TTL_MAX_SECONDS} for DNS-only hostnames; leave it unset "
    "for proxied ones",
    _check,
    config=CONFIG,
)

WEAKENINGS = [
    Weakening("dr", "dns-api-record is DNS-only with TTL 3600; failover records need "
              f"{DNS_TTL_MIN_SECONDS}-{DNS_TTL_MAX_SECONDS} seconds",
              "dns-api-record", {"ttl": 3600}),
    Weakening("dr", "dns-app-record is proxied but has TTL 300; proxied records use 1 (auto)",
              "dns-app-record", {"ttl": 300}),
]
