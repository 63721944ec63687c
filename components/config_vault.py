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

from .backup_bucket import days_to_seconds
from .stack_config import ConfigVaultSettings


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


class ConfigVault(pulumi.ComponentResource):
    """A Secret Manager secret (and version) per setting, replicated to both regions, readable by the named few."""

    secret_ids: dict[str, pulumi.Output[str]]
    """Secret id per setting name."""

    def __init__(self, name: str, args: ConfigVaultArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("raptorflow:config:ConfigVault", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._key_grants: list[gcp.kms.CryptoKeyIAMMember] = []
        keys = self._regional_keys(name, args) if args.settings.cmek else {}
        self.secret_ids = {}
        for setting in args.settings.settings:
            slug = setting.name.lower().replace("_", "-")
            secret = gcp.secretmanager.Secret(
                f"{name}-{slug}",
                secret_id=slug,
                project=args.project,
                replication=gcp.secretmanager.SecretReplicationArgs(
                    user_managed=gcp.secretmanager.SecretReplicationUserManagedArgs(replicas=[
                        gcp.secretmanager.SecretReplicationUserManagedReplicaArgs(
                            location=region,
                            customer_managed_encryption=(
                                gcp.secretmanager.SecretReplicationUserManagedReplicaCustomerManagedEncryptionArgs(
                                    kms_key_name=keys[region].id
                                ) if region in keys else None
                            ),
                        )
                        for region in args.regions
                    ])
                ),
                deletion_protection=True,
                labels={**args.labels, "config-setting": slug},
                opts=pulumi.ResourceOptions(parent=self, depends_on=self._key_grants),
            )
            value = args.secret_values[setting.name] if setting.secret else setting.value
            gcp.secretmanager.SecretVersion(
                f"{name}-{slug}-value",
                secret=secret.id,
                secret_data=pulumi.Output.secret(value) if setting.secret else value,
                opts=child,
            )
            for index, reader in enumerate(args.settings.readers):
                gcp.secretmanager.SecretIamMember(
                    f"{name}-{slug}-reader-{index}",
                    secret_id=secret.id,
                    project=args.project,
                    role="roles/secretmanager.secretAccessor",
                    member=reader,
                    opts=child,
                )
            self.secret_ids[setting.name] = secret.secret_id
        self.register_outputs({"secretIds": self.secret_ids})

    def _regional_keys(self, name: str, args: ConfigVaultArgs) -> dict[str, gcp.kms.CryptoKey]:
        """A key per region, usable by Secret Manager's service agent (CMEK keys must share the replica's region)."""
        guarded = pulumi.ResourceOptions(parent=self, protect=True)
        agent = gcp.projects.ServiceIdentity(
            f"{name}-secretmanager-agent", project=args.project, service="secretmanager.googleapis.com",
            opts=pulumi.ResourceOptions(parent=self),
        )
        keys = {}
        for region in args.regions:
            ring = gcp.kms.KeyRing(f"{name}-{region}-keyring", name=f"{name}-{region}", project=args.project,
                                   location=region, opts=guarded)
            keys[region] = gcp.kms.CryptoKey(
                f"{name}-{region}-key", name=f"{name}-key", key_ring=ring.id, purpose="ENCRYPT_DECRYPT",
                rotation_period=f"{days_to_seconds(args.kms_rotation_days)}s",
                labels={**args.labels, "config-vault": name}, opts=guarded,
            )
            self._key_grants.append(gcp.kms.CryptoKeyIAMMember(
                f"{name}-{region}-key-agent", crypto_key_id=keys[region].id,
                role="roles/cloudkms.cryptoKeyEncrypterDecrypter", member=agent.member,
                opts=pulumi.ResourceOptions(parent=self),
            ))
        return keys
