"""ConfigVault: the application's settings and secrets in Secret Manager, in both sites' regions.

One secret per setting, replicated by Secret Manager (user-managed replication)
to the primary and the standby region, so the settings survive a regional
outage; a version per value, so Secret Manager keeps the history. Secret
values come from `pulumi config set --secret`; plain values only for settings
the config marks non-secret. Optionally each regional replica is encrypted
with a customer-managed key of its region. Only the principals the config
names may read the values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from . import defaults
from .building_blocks import RotatingKey, propagated, readable_secret, rotating_key
from .config import ConfigVaultSettings


@dataclass(frozen=True)
class ConfigVaultArgs:
    """Inputs of a ConfigVault."""

    project: str
    """Project of the secrets (and keys)."""
    regions: tuple[str, ...]
    """Regions each secret is replicated to: the primary's and the standby's."""
    settings: ConfigVaultSettings
    """The settings, CMEK choice and readers, as validated stack config."""
    kms_rotation_days: int
    """Rotation of the per-region keys when CMEK is on."""
    labels: dict[str, str]
    """Labels on every secret and key."""
    secret_values: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Values of the secret settings (Pulumi secrets), by name."""
    rebuild: bool = False
    """A rebuild after a teardown: the key rings and keys it kept are imported, not created."""
    deletion_protection: bool = True
    """Off only for the teardown run before `pulumi destroy` (`deploy.teardown`)."""
    iam_propagation_seconds: int = defaults.IAM_PROPAGATION_SECONDS
    """How long CMEK secrets wait after Secret Manager's key grants (`deploy.iamPropagationSeconds`)."""


class ConfigVault(pulumi.ComponentResource):
    """A Secret Manager secret (and version) per setting, replicated to both regions, readable by the named few."""

    secret_ids: dict[str, pulumi.Output[str]]
    """Secret id per setting name."""

    def __init__(self, name: str, args: ConfigVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:config:ConfigVault", name, None, opts)
        keys = self._regional_keys(name, args) if args.settings.cmek else {}
        # Secret Manager checks its agent's use of each key when it creates a CMEK secret.
        keys_ready = propagated(self, f"{name}-key-grant-propagation", [k.agent_grant for k in keys.values()],
                                args.iam_propagation_seconds)
        self.secret_ids = {}
        for setting in args.settings.settings:
            slug = setting.name.lower().replace("_", "-")
            replicas = [
                gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(
                    location=region,
                    customer_managed_encryption=(
                        gcp.secretmanager.SecretReplicationUserManagedReplicaCustomerManagedEncryptionArgs(
                            kms_key_name=keys[region].key.id
                        ) if region in keys else None
                    ),
                )
                for region in args.regions
            ]
            value = pulumi.Output.secret(args.secret_values[setting.name]) if setting.secret else setting.value
            if value is None:  # stack-config validation requires a value of every plain setting
                raise ValueError(f"{name}: the plain setting {setting.name} has no value")
            secret = readable_secret(
                self, f"{name}-{slug}", secret_id=slug, project=args.project, replicas=replicas, value=value,
                readers=[(f"{name}-{slug}-reader-{index}", reader) for index, reader in enumerate(args.settings.readers)],
                labels={**args.labels, "config-setting": slug},
                depends_on=keys_ready, deletion_protection=args.deletion_protection,
            )
            self.secret_ids[setting.name] = secret.secret.secret_id
        self.register_outputs({"secretIds": self.secret_ids})

    def _regional_keys(self, name: str, args: ConfigVaultArgs) -> dict[str, RotatingKey]:
        """A key per region, usable by Secret Manager's service agent (CMEK keys must share the replica's region)."""
        agent = gcp.projects.ServiceIdentity(
            f"{name}-secretmanager-agent", project=args.project, service="secretmanager.googleapis.com",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return {
            region: rotating_key(
                self, f"{name}-{region}", ring_name=f"{name}-{region}", key_name=f"{name}-key",
                grant_name=f"{name}-{region}-key-agent", project=args.project, location=region,
                rotation_days=args.kms_rotation_days, labels={**args.labels, "config-vault": name},
                agent_member=agent.member, rebuild=args.rebuild,
            )
            for region in args.regions
        }
