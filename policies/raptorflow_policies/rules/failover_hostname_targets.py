"""Every hostname under failover has both a primary and a standby target, and points at one of them."""

from __future__ import annotations

from pulumi_policy import Severity

from .._base import DNS_RECORD, Weakening, failover_hostnames, stack_policy


def _check(args, violate):
    records = {r.props.get("name"): r for r in args.resources if r.resource_type == DNS_RECORD}
    for host, urn in failover_hostnames(args.resources):
        name = host.get("fqdn", "?")
        if not host.get("primary") or not host.get("standby"):
            violate(f"hostname {name} lacks a {'primary' if not host.get('primary') else 'standby'} target", urn)
        elif host["primary"] == host["standby"]:
            violate(f"hostname {name} has the same primary and standby target", urn)
        record = records.get(name)
        if record is not None and record.props.get("content") not in (host.get("primary"), host.get("standby")):
            violate(f"record {name} points at {record.props.get('content')}, neither of its targets", record.urn)


POLICY = stack_policy(
    "raptorflow-failover-hostname-targets",
    "Every hostname under failover has both a primary and a standby target, and points at one of them.",
    "DR plan scenario 2",
    Severity.HIGH,
    "give the hostname distinct `primary` and `standby` targets in the failover config",
    _check,
)

WEAKENINGS = [
    Weakening("dr", "hostname www.raptorflow.app lacks a standby target", "dns-www", {"standby": ""}),
    Weakening("dr", "record app.raptorflow.app points at elsewhere.example.com, neither of its targets",
              "dns-app-record", {"content": "elsewhere.example.com"}),
]
