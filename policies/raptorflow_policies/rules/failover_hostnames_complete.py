"""Failover reaches everything it names: each hostname has its record (or load balancer), each record is a declared
hostname, and every Vercel variable the region switch declares exists."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import (
    DNS_RECORD,
    FAILOVER_LOAD_BALANCER,
    FAILOVER_RECORD,
    LOAD_BALANCER,
    VERCEL_ENV,
    ResourceType,
    Weakening,
    failover_hostnames,
    of_type,
    stack_policy,
)

REGION_ENVIRONMENT = ResourceType.REGION_ENVIRONMENT


def _check(args, violate):
    records = {r.props.get("name"): r for r in of_type(args.resources, DNS_RECORD)}
    balancers = {r.props.get("name") for r in of_type(args.resources, LOAD_BALANCER)}
    declared = {}
    for host, urn in failover_hostnames(args.resources):
        declared[host.get("fqdn")] = urn
    for fqdn, urn in declared.items():
        if fqdn not in records and fqdn not in balancers:
            violate(f"hostname {fqdn} is under failover but the stack has no DNS record or load balancer for it: "
                    "failover would not move it", urn)
    if any(r.resource_type in (FAILOVER_RECORD, FAILOVER_LOAD_BALANCER) for r in args.resources) or declared:
        for name, record in records.items():
            if name not in declared:
                violate(f"DNS record {name} is in the stack but declared under no failover hostname", record.urn)
    for name, record in records.items():
        if name in declared and record.props.get("type") not in ("A", "AAAA", "CNAME"):
            violate(f"DNS record {name} is a {record.props.get('type')} record: it sends no traffic anywhere",
                    record.urn)
    for switched, what in ((records.values(), "content"), (of_type(args.resources, VERCEL_ENV), "value")):
        for resource in switched:
            if what in (resource.opts.ignore_changes or []):
                violate(f"{resource.name} ignores changes to its {what}: a promotion would leave it pointing at the "
                        "site that is down (deploy.adopting belongs to tools.adopt's one run)", resource.urn)
    for variable in of_type(args.resources, VERCEL_ENV):
        if "production" not in (variable.props.get("targets") or []):
            violate(f"Vercel variable {variable.props.get('key')} does not reach production deployments",
                    variable.urn)
    variables = {v.props.get("key") for v in of_type(args.resources, VERCEL_ENV)}
    for switch in of_type(args.resources, REGION_ENVIRONMENT):
        for key in switch.props.get("keys") or []:
            if key not in variables:
                violate(f"Vercel variable {key} switches region on failover but the stack does not set it",
                        switch.urn)


POLICY = stack_policy(
    "raptorflow-failover-hostnames-complete",
    "Every failover hostname has its Cloudflare record or load balancer, every record is a declared failover "
    "hostname, every Vercel variable the region switch declares is set by the stack, and none of them ignores "
    "what a promotion changes.",
    "DR plan scenario 2",
    Severity.HIGH,
    "declare hostnames and variables in the failover config; FailoverRecord and RegionEnvironment create them",
    _check,
)

WEAKENINGS = [
    Weakening("dr", "hostname www.raptorflow.app is under failover but the stack has no DNS record or load balancer "
              "for it: failover would not move it", removed=("dns-www-record",)),
    Weakening("dr", "DNS record api.raptorflow.app is in the stack but declared under no failover hostname",
              removed=("dns-api",)),
    Weakening("dr", "Vercel variable SUPABASE_URL switches region on failover but the stack does not set it",
              removed=("vercel-env-supabase-url",)),
    Weakening("dr", "DNS record api.raptorflow.app is a TXT record: it sends no traffic anywhere", "dns-api-record",
              {"type": "TXT"}),
    Weakening("dr", "Vercel variable SUPABASE_URL does not reach production deployments", "vercel-env-supabase-url",
              {"targets": ["preview"]}),
    Weakening("dr", "dns-apex-record ignores changes to its content: a promotion would leave it pointing at the site "
              "that is down (deploy.adopting belongs to tools.adopt's one run)", "dns-apex-record",
              ignore_changes=("content", "proxied", "ttl", "comment")),
]
