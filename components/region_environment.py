"""RegionEnvironment: Vercel env vars that hold the active site's values.

Each variable keeps one Pulumi resource whatever the active site, so a
promotion updates values in place. Secret values are Pulumi secrets and
`sensitive` in Vercel (write-only in its dashboard and API).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumiverse_vercel as vercel

from core.contracts import ResourceType

from .building_blocks import adoption_options
from .config import VercelSettings

# What the program may set differently from a hand-made variable: the adopting run keeps the live values. A
# sensitive value reads back as null, so it could never match; project, team and key must match.
VARIABLE_MUTABLE_INPUTS = ("value", "sensitive", "targets", "comment")


@dataclass(frozen=True)
class RegionEnvironmentArgs:
    """Inputs of a RegionEnvironment."""

    settings: VercelSettings
    """Project, team, targets and plain per-site values, as validated stack config."""
    standby_active: bool
    """True when the standby site serves traffic (the dr stack is promoted)."""
    secret_values: dict[str, tuple[pulumi.Input[str], pulumi.Input[str]]] = field(default_factory=dict)
    """Secret variables: name -> (primary value, standby value), each a Pulumi secret."""
    adopting: bool = False
    """The adopting run of `tools.adopt`: an existing variable keeps its live values until the next run."""


class RegionEnvironment(pulumi.ComponentResource):
    """One Vercel project env var per configured name, valued for the active site."""

    def __init__(self, name: str, args: RegionEnvironmentArgs, opts: pulumi.ResourceOptions | None = None):
        plain = {key: ((v.primary, v.standby), False) for key, v in args.settings.variables.items()}
        secret = {key: (values, True) for key, values in args.secret_values.items()}
        # Declared on the component, so the policy pack can tell a variable that failover needs has gone.
        super().__init__(ResourceType.REGION_ENVIRONMENT, name, {"keys": sorted({**plain, **secret})}, opts)
        site = 1 if args.standby_active else 0
        for key, (values, sensitive) in sorted({**plain, **secret}.items()):
            value = values[site]
            vercel.ProjectEnvironmentVariable(
                f"{name}-{key.lower().replace('_', '-')}",
                project_id=args.settings.project_id,
                team_id=args.settings.team_id,
                key=key,
                value=pulumi.Output.secret(value) if sensitive else value,
                sensitive=sensitive,
                targets=list(args.settings.targets),
                comment="raptorflow-dr: switches to the backup region on failover",
                # An existing variable of the same key and target fails with ENV_CONFLICT: adopt it instead.
                opts=adoption_options(self, _import_id(args.settings, key), args.adopting, VARIABLE_MUTABLE_INPUTS),
            )
        self.register_outputs({})


def _import_id(settings: VercelSettings, key: str) -> str | None:
    """The import id of an existing variable (pulumiverse-vercel docs: [team_id/]project_id/env_id)."""
    env_id = settings.existing_env_ids.get(key)
    if env_id is None:
        return None
    return "/".join(part for part in (settings.team_id, settings.project_id, env_id) if part)
