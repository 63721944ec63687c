"""Failover: the DNS traffic switch (records or load balancers) and the Vercel env vars it flips."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import Field, SecretStr, StrictInt, model_validator

from .. import defaults
from .base import ENV_NAME, HOSTNAME, DomainName, Model, cloudflare_id, matching

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

    name: Annotated[str, matching(_HOST_LABEL, "a record name: '@' or one lowercase DNS label such as 'app'")] = Field(
        description="Record name in the zone: '@' for the apex, or a label such as 'app'.")
    type: Literal["A", "AAAA", "CNAME"] = Field("CNAME", description="Record type of both targets.")
    proxied: bool = Field(True, description="Through Cloudflare's proxy (switches instantly at the edge).")
    ttl_seconds: int | None = Field(
        None, description="DNS-only records: 60-300 seconds (default 60). Proxied records are always 1 (auto)."
    )
    primary: str = Field(description="Target on the primary site (IP for A/AAAA, hostname for CNAME).")
    standby: str = Field(description="Target on the standby site.")
    state: Literal["existing", "new"] = Field(
        description="Whether Cloudflare already has a record for this name (`existing`: adopted, with "
                    "`existingRecordId`) or not (`new`: created). No default: creating a name that exists fails "
                    "(81053) or, for an A record, adds a round-robin twin. In loadBalancer mode the load balancer "
                    "answers for the name ahead of any record, which is left as it is.",
    )
    existing_record_id: Annotated[str, cloudflare_id("record")] | None = Field(
        None, description="State `existing`: id of the record that serves this name now, adopted (imported), not "
                          "created. Find it with the Cloudflare API (GET zones/ZONE/dns_records?name=FQDN).",
    )

    @model_validator(mode="after")
    def _cloudflare_rules(self) -> FailoverHostname:
        if self.state == "existing" and self.existing_record_id is None:
            raise ValueError(
                f"'{self.name}' is declared existing but has no existingRecordId: creating it again would fail "
                "(Cloudflare 81053) or add a round-robin twin; set the id (GET zones/ZONE/dns_records?name=FQDN)"
            )
        if self.state == "new" and self.existing_record_id is not None:
            raise ValueError(f"'{self.name}' is declared new but has an existingRecordId; declare it existing to "
                             "adopt that record, or drop the id")
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
                f"{defaults.DNS_TTL_MAX_SECONDS}: Cloudflare's minimum for DNS-only records is "
                f"{defaults.DNS_TTL_MIN_SECONDS} and the plan's ceiling is {defaults.DNS_TTL_MAX_SECONDS}"
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

    account_id: Annotated[str, cloudflare_id("account")] = Field(description="Cloudflare account id that owns monitors and pools.")
    monitor_interval_seconds: StrictInt = Field(
        defaults.LB_MONITOR_INTERVAL_SECONDS, ge=10, le=3_600, description="Seconds between health checks."
    )
    monitor_retries: StrictInt = Field(defaults.LB_MONITOR_RETRIES, ge=0, le=5, description="Retries before unhealthy.")
    monitor_timeout_seconds: StrictInt = Field(
        defaults.LB_MONITOR_TIMEOUT_SECONDS, ge=1, le=10, description="Seconds a health check may take."
    )



class FailoverSettings(Model):
    """The traffic switch: Cloudflare records (or load balancers) for each hostname under failover."""

    zone_id: Annotated[str, cloudflare_id("zone")] = Field(description="Cloudflare zone id of `domain`.")
    domain: DomainName = Field(description="The zone's domain, e.g. raptorflow.app.")
    mode: Literal["dns", "loadBalancer"] = Field("dns", description="Plain records, or health-checked load balancers.")
    health_path: str = Field(defaults.HEALTH_PATH, pattern=r"^/", description="Health endpoint path on every target.")
    hostnames: tuple[FailoverHostname, ...] = Field(min_length=1, description="The hostnames that fail over.")
    load_balancer: LoadBalancerSettings | None = Field(None, description="Required in loadBalancer mode.")

    @model_validator(mode="after")
    def _consistent(self) -> FailoverSettings:
        names = [h.name for h in self.hostnames]
        if len(set(names)) != len(names):
            raise ValueError(f"each hostname once; got {names}")
        ids = [h.existing_record_id for h in self.hostnames if h.existing_record_id]
        shared = sorted({i for i in ids if ids.count(i) > 1})
        if shared:
            raise ValueError(f"existingRecordId {shared} is given to more than one hostname: each adopts its own "
                             "record (two would fight over one, and the engine renames it to the last)")
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
    variable_states: dict[str, Literal["existing", "new"]] = Field(
        default_factory=dict,
        description="Whether each variable (plain and secret) already exists in Vercel for these targets "
                    "(`existing`: adopted, with its id in `existingEnvIds`) or not (`new`: created). Every "
                    "variable needs one: creating one that exists fails with ENV_CONFLICT.",
    )
    existing_env_ids: dict[str, str] = Field(
        default_factory=dict,
        description="Ids of the variables declared existing, by name: adopted (imported), not created "
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
        names = {*self.variables, *self.secret_variables}
        for field, given in (("variableStates", self.variable_states), ("existingEnvIds", self.existing_env_ids)):
            unknown = sorted(set(given) - names)
            if unknown:
                raise ValueError(f"{field} names {unknown}, which are not among `variables` or `secretVariables`")
        undeclared = sorted(names - set(self.variable_states))
        if undeclared:
            raise ValueError(f"variableStates does not say whether {undeclared} already exist in Vercel: declare "
                             "each `existing` (adopted, id in existingEnvIds) or `new` (created)")
        for name, state in sorted(self.variable_states.items()):
            if state == "existing" and name not in self.existing_env_ids:
                raise ValueError(f"{name} is declared existing but existingEnvIds has no id for it: creating it "
                                 "again fails with ENV_CONFLICT; set the id (GET /v10/projects/PROJECT/env)")
            if state == "new" and name in self.existing_env_ids:
                raise ValueError(f"{name} is declared new but has an id in existingEnvIds; declare it existing to "
                                 "adopt that variable, or drop the id")
        for name, env_id in self.existing_env_ids.items():
            if not re.match(r"^[A-Za-z0-9]{8,64}$", env_id):
                raise ValueError(f"existingEnvIds.{name}: '{env_id}' is not a Vercel env var id")
        ids = list(self.existing_env_ids.values())
        shared = sorted({i for i in ids if ids.count(i) > 1})
        if shared:
            raise ValueError(f"existingEnvIds {shared} is given to more than one variable: each adopts its own "
                             "(two would fight over one, and the engine renames it to the last)")
        return self
