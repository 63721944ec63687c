"""FailoverLoadBalancer: Cloudflare load balancers that prefer the active site and fall back to the other.

One health monitor (HTTPS GET of the health path, expecting 200), one pool per
hostname and site holding that site's target for that hostname only (a pool
shared by hostnames would send `app` traffic to `api`'s origin), and one load
balancer per hostname whose `default_pools` list the active site's pool first
and whose `fallback_pool` is the other site's. Cloudflare fails over on its own when the
active pool turns unhealthy; flipping `promoted` is the manual override, an
in-place update of the pool order.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from core.contracts import ResourceType

from .config import FailoverSettings

SITES = ("primary", "standby")


@dataclass(frozen=True)
class FailoverLoadBalancerArgs:
    """Inputs of a FailoverLoadBalancer."""

    settings: FailoverSettings
    """Zone, domain, health path, hostnames and monitor timings, as validated stack config."""
    standby_active: bool
    """True when the standby site serves traffic (the dr stack is promoted)."""


class FailoverLoadBalancer(pulumi.ComponentResource):
    """A health monitor, a pool per site and a load balancer per hostname, active site first."""

    def __init__(self, name: str, args: FailoverLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        settings, lb = args.settings, args.settings.load_balancer
        if lb is None:  # stack-config validation requires `loadBalancer` in loadBalancer mode
            raise ValueError(f"{name}: a FailoverLoadBalancer needs failover.loadBalancer settings")
        active, other = ("standby", "primary") if args.standby_active else ("primary", "standby")
        # Both targets of every hostname travel with the component, for policies and reviewers.
        described = {
            "activeSite": active,
            "hostnames": [
                {"fqdn": h.fqdn(settings.domain), "primary": h.primary, "standby": h.standby}
                for h in settings.hostnames
            ],
        }
        super().__init__(ResourceType.FAILOVER_LOAD_BALANCER, name, described, opts)
        child = pulumi.ResourceOptions(parent=self)
        monitor = cloudflare.LoadBalancerMonitor(
            f"{name}-health",
            account_id=lb.account_id,
            type="https",
            method="GET",
            path=settings.health_path,
            expected_codes="200",
            interval=lb.monitor_interval_seconds,
            retries=lb.monitor_retries,
            timeout=lb.monitor_timeout_seconds,
            follow_redirects=False,
            allow_insecure=False,
            description=f"raptorflow-dr: GET {settings.health_path} expecting 200",
            opts=child,
        )
        for host in settings.hostnames:
            pools = {
                site: cloudflare.LoadBalancerPool(
                    f"{name}-{host.slug}-{site}",
                    account_id=lb.account_id,
                    name=f"raptorflow-{host.slug}-{site}",
                    description=f"raptorflow-dr {host.fqdn(settings.domain)} on the {site} site",
                    monitor=monitor.id,
                    minimum_origins=1,
                    origins=[cloudflare.LoadBalancerPoolOriginArgs(
                        name=f"{host.slug}-{site}", address=getattr(host, site), enabled=True
                    )],
                    opts=child,
                )
                for site in SITES
            }
            cloudflare.LoadBalancer(
                f"{name}-{host.slug}",
                zone_id=settings.zone_id,
                name=host.fqdn(settings.domain),
                default_pools=[pools[active].id, pools[other].id],
                fallback_pool=pools[other].id,
                steering_policy="off",
                proxied=host.proxied,
                ttl=host.ttl,
                description=f"raptorflow-dr failover of {host.fqdn(settings.domain)}",
                opts=child,
            )
        self.register_outputs(described)
