"""Failover: the DNS traffic switch (records or load balancers) and the Vercel env vars it flips."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, SecretStr, StrictInt, field_validator, model_validator

from .. import defaults
from .base import CLOUDFLARE_ID, ENV_NAME, HOSTNAME, Model

_HOST_LABEL = re.compile(r"^(@|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)$")


def _check_target(record_type: str, value: str, field: str) -> None:
    if record_type == "CNAME":
        if not HOSTNAME.match(value):
            raise ValueError(f"{field} '{value}' is not a hostname, as a CNAME record needs")
        return
    version = 4 if record_type == "A" else 6
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise ValueError(f"{field} '{value}' is not an IPv{version} address, as an {record_type} record needs")


class FailoverHostname(Model):
    """A hostname that moves between the sites: its record points at the active site's target."""

    name: str = Field(description="Record name in the zone: '@' for the apex, or a label such as 'app'.")
    type: Literal["A", "AAAA", "CNAME"] = Field("CNAME", description="Record type of both targets.")
    proxied: bool = Field(True, description="Through Cloudflare's proxy (switches instantly at the edge).")
    ttl_seconds: int | None = Field(
        None, description="DNS-only records: 60-300 seconds (default 60). Proxied records are always 1 (auto)."
    )
    primary: str = Field(description="Target on the primary site (IP for A/AAAA, hostname for CNAME).")
    standby: str = Field(description="Target on the standby site.")
    existing_record_id: str | None = Field(
        None, description="Id of the record that already serves this name in Cloudflare: adopted (imported), "
                          "not created. Find it with the Cloudflare API (GET zones/ZONE/dns_records?name=...).",
    )

    @field_validator("existing_record_id")
    @classmethod
    def _record_id(cls, value: str | None) -> str | None:
        if value is not None and not CLOUDFLARE_ID.match(value):
            raise ValueError(f"'{value}' is not a Cloudflare record id (32 hex characters)")
        return value

    @field_validator("name")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _HOST_LABEL.match(value):
            raise ValueError(f"'{value}' is not a record name: '@' or one lowercase DNS label such as 'app'")
        return value

    @model_validator(mode="after")
    def _cloudflare_rules(self) -> FailoverHostname:
        _check_target(self.type, self.primary, "primary")
        _check_target(self.type, self.standby, "standby")
        if self.primary == self.standby:
            raise ValueError(f"'{self.name}': primary and standby are the same target; failover would change nothing")
        if self.proxied and self.ttl_seconds not in (None, 1):
            raise ValueError(
                f"'{self.name}': proxied records have TTL 1 (auto) in Cloudflare; drop ttlSeconds "
                f"({self.ttl_seconds}) or set proxied: false"
            )
        if not self.proxied and self.ttl_seconds is not None and not (
            defaults.DNS_TTL_MIN_SECONDS <= self.ttl_seconds <= defaults.DNS_TTL_MAX_SECONDS
        ):
            raise ValueError(
                f"'{self.name}': ttlSeconds {self.ttl_seconds} is outside {defaults.DNS_TTL_MIN_SECONDS}-"
                f"{defaults.DNS_TTL_MAX_SECONDS}: Cloudflare's minimum for DNS-only records is 60 and the "
                "plan's ceiling is 300"
            )
        return self

    @property
    def ttl(self) -> int:
        """The TTL Cloudflare gets: 1 (auto) when proxied, else the configured or default seconds."""
        return 1 if self.proxied else (self.ttl_seconds or defaults.DNS_TTL_DEFAULT_SECONDS)

    def fqdn(self, domain: str) -> str:
        """The full hostname in `domain`."""
        return domain if self.name == "@" else f"{self.name}.{domain}"

    @property
    def slug(self) -> str:
        """The name as it appears in resource names ('apex' for '@')."""
        return "apex" if self.name == "@" else self.name


class LoadBalancerSettings(Model):
    """Cloudflare load balancing: health-checked pools per site, the active site first."""

    account_id: str = Field(description="Cloudflare account id that owns monitors and pools.")
    monitor_interval_seconds: StrictInt = Field(
        defaults.LB_MONITOR_INTERVAL_SECONDS, ge=10, le=3_600, description="Seconds between health checks."
    )
    monitor_retries: StrictInt = Field(defaults.LB_MONITOR_RETRIES, ge=0, le=5, description="Retries before unhealthy.")
    monitor_timeout_seconds: StrictInt = Field(
        defaults.LB_MONITOR_TIMEOUT_SECONDS, ge=1, le=10, description="Seconds a health check may take."
    )

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        if not CLOUDFLARE_ID.match(value):
            raise ValueError(f"'{value}' is not a Cloudflare account id (32 hex characters)")
        return value


class FailoverSettings(Model):
    """The traffic switch: Cloudflare records (or load balancers) for each hostname under failover."""

    zone_id: str = Field(description="Cloudflare zone id of `domain`.")
    domain: str = Field(description="The zone's domain, e.g. raptorflow.app.")
    mode: Literal["dns", "loadBalancer"] = Field("dns", description="Plain records, or health-checked load balancers.")
    health_path: str = Field(defaults.HEALTH_PATH, pattern=r"^/", description="Health endpoint path on every target.")
    hostnames: tuple[FailoverHostname, ...] = Field(min_length=1, description="The hostnames that fail over.")
    load_balancer: LoadBalancerSettings | None = Field(None, description="Required in loadBalancer mode.")

    @field_validator("zone_id")
    @classmethod
    def _zone(cls, value: str) -> str:
        if not CLOUDFLARE_ID.match(value):
            raise ValueError(f"'{value}' is not a Cloudflare zone id (32 hex characters)")
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not HOSTNAME.match(value):
            raise ValueError(f"'{value}' is not a domain name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FailoverSettings:
        names = [h.name for h in self.hostnames]
        if len(set(names)) != len(names):
            raise ValueError(f"each hostname once; got {names}")
        if self.mode == "loadBalancer" and self.load_balancer is None:
            raise ValueError("mode loadBalancer needs `loadBalancer: {accountId: ...}`")
        return self


class SiteValues(Model):
    """One setting's value on each site."""

    primary: str = Field(description="Value on the primary site.")
    standby: str = Field(description="Value on the standby site.")


class SecretSiteValues(Model):
    """One secret setting's value on each site (a missing one is reported with the command that sets it)."""

    primary: SecretStr | None = Field(None, description="Value on the primary site.")
    standby: SecretStr | None = Field(None, description="Value on the standby site.")


class VercelSettings(Model):
    """Vercel project env vars that switch from primary-region to backup-region values on failover."""

    project_id: str = Field(description="Vercel project id (prj_...).")
    team_id: str | None = Field(None, description="Vercel team id, when the project belongs to a team.")
    targets: tuple[Literal["production", "preview", "development"], ...] = Field(
        ("production",), min_length=1, description="Environments the variables apply to."
    )
    variables: dict[str, SiteValues] = Field(default_factory=dict, description="Plain values per site, by name.")
    secret_variables: tuple[str, ...] = Field(
        (), description="Names whose per-site values are in the secret key `vercelSecretValues`."
    )
    existing_env_ids: dict[str, str] = Field(
        default_factory=dict,
        description="Ids of env vars that already exist in Vercel, by name: adopted (imported), not created "
                    "(`vercel env ls` does not show ids; GET /v10/projects/PROJECT/env does).",
    )

    @model_validator(mode="after")
    def _names(self) -> VercelSettings:
        for name in (*self.variables, *self.secret_variables):
            if not ENV_NAME.match(name):
                raise ValueError(f"'{name}' is not an env var name (A-Z, 0-9, _)")
        both = set(self.variables) & set(self.secret_variables)
        if both:
            raise ValueError(f"{sorted(both)} are both plain and secret; keep each value in one place")
        unknown = sorted(set(self.existing_env_ids) - set(self.variables) - set(self.secret_variables))
        if unknown:
            raise ValueError(f"existingEnvIds names {unknown}, which are not among `variables` or `secretVariables`")
        for name, env_id in self.existing_env_ids.items():
            if not re.match(r"^[A-Za-z0-9]{8,64}$", env_id):
                raise ValueError(f"existingEnvIds.{name}: '{env_id}' is not a Vercel env var id")
        return self
