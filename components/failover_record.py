"""FailoverRecord: one Cloudflare DNS record that points at the active site's target.

The record's Pulumi name depends only on the hostname, never on which site is
active, so promoting the standby site is an in-place update of `content`, never
a replacement: the name keeps resolving throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from core.contracts import ResourceType

from .building_blocks import adoption_options
from .config import FailoverHostname

# What the program may set differently from the record an existing name has: the adopting run keeps the live
# values (zone, name and type must match, or the import fails: a change of type is a new record).
RECORD_MUTABLE_INPUTS = ("content", "proxied", "ttl", "comment")


@dataclass(frozen=True)
class FailoverRecordArgs:
    """Inputs of a FailoverRecord."""

    zone_id: str
    """Cloudflare zone of the record."""
    domain: str
    """The zone's domain; the record is `hostname.fqdn(domain)`."""
    hostname: FailoverHostname
    """Record name, type, proxying, TTL and both sites' targets, as validated stack config."""
    standby_active: bool
    """True when the standby site serves traffic (the dr stack is promoted)."""
    adopting: bool = False
    """The adopting run of `tools.adopt`: an existing record keeps its live values until the next run."""


class FailoverRecord(pulumi.ComponentResource):
    """A DNS record whose content is the primary target, or the standby target once promoted."""

    fqdn: str
    """The hostname the record answers for."""
    content: str
    """The target the record points at now."""

    def __init__(self, name: str, args: FailoverRecordArgs, opts: pulumi.ResourceOptions | None = None):
        host = args.hostname
        # Both targets travel with the component so that policies can check every hostname has both.
        described = {
            "fqdn": host.fqdn(args.domain),
            "primary": host.primary,
            "standby": host.standby,
            "activeSite": "standby" if args.standby_active else "primary",
        }
        super().__init__(ResourceType.FAILOVER_RECORD, name, described, opts)
        self.fqdn = described["fqdn"]
        self.content = host.standby if args.standby_active else host.primary
        cloudflare.DnsRecord(
            f"{name}-record",
            zone_id=args.zone_id,
            name=self.fqdn,
            type=host.type,
            content=self.content,
            proxied=host.proxied,
            ttl=host.ttl,
            comment=f"raptorflow-dr failover: primary {host.primary}, standby {host.standby}",
            # A live name already has a record: creating another fails (81053) or, for A records, adds a
            # round-robin twin. Adopt it instead (import id `<zone_id>/<record_id>`, pulumi-cloudflare docs).
            opts=adoption_options(
                self, f"{args.zone_id}/{host.existing_record_id}" if host.existing_record_id else None,
                args.adopting, RECORD_MUTABLE_INPUTS,
            ),
        )
        self.register_outputs({**described, "content": self.content})
