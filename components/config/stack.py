"""The whole stack config of one site: where it lives, its keys, and the rules across sections."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, StrictBool, StrictInt, field_validator, model_validator

from core.contracts import Label
from core.images import in_repository, repository_url
from core.regions import GCP_REGIONS

from .. import defaults
from .backups import DatabaseBackupSettings
from .base import Model, check_region, matching
from .failover import FailoverSettings, SecretSiteValues, VercelSettings
from .legacy import migrated, misplaced_section
from .monitoring import MonitoringSettings
from .recovery import RecoverySettings
from .site_sections import SITE_SECTIONS, PrimarySettings, StandbySettings, check_bucket_name
from .vault import ConfigVaultSettings

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
ProjectId = Annotated[str, matching(_PROJECT_ID, "a Google Cloud project id: 6-30 characters, lowercase letters, "
                                                 "digits and hyphens, starting with a letter")]


class GcpSettings(Model):
    """Where the stack's Google Cloud resources live."""

    project: ProjectId = Field(description="Google Cloud project id that holds this site's resources.")
    region: str = Field(description="Region of the site's buckets, key rings and jobs (e.g. us-central1).")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        return check_region(value)

    @property
    def continent(self) -> str:
        """The continent of `region`, for cross-continent checks."""
        return GCP_REGIONS[self.region]


class KmsSettings(Model):
    """Customer-managed encryption keys of the backup buckets."""

    rotation_days: StrictInt = Field(
        defaults.KMS_ROTATION_DAYS_DEFAULT,
        ge=1,
        le=defaults.KMS_ROTATION_DAYS_MAX,
        description="Days between automatic key rotations (at most 90).",
    )


class DeploySettings(Model):
    """How this `pulumi up` deploys: the adopting run of a first deploy, and the rebuild after a teardown."""

    adopting: StrictBool = Field(
        False, description="Set only by `python -m tools.adopt` for its adopting run, never in a stack file: each "
                           "resource being imported (existing records and env vars) takes its live value for every "
                           "input the program would change, so the import matches; the run after it applies them.",
    )
    rebuild: StrictBool = Field(
        False, description="The stack is rebuilt after a teardown: what the teardown keeps (backup buckets, their "
                           "log buckets, key rings and keys, all retained on delete) is imported by its known id "
                           "instead of created. Set by `python -m tools.adopt --rebuild`.",
    )
    teardown: StrictBool = Field(
        False, description="The last run before `pulumi destroy` (docs/runbooks/rebuild.md): turns off the "
                           "deletion protection of Cloud Run jobs and Secret Manager secrets, without which "
                           "destroy fails. Never committed: the policy pack refuses it.",
    )
    iam_propagation_seconds: StrictInt = Field(
        defaults.IAM_PROPAGATION_SECONDS, ge=0, le=900,
        description="Seconds to wait after a grant that a create checks at once and the provider does not retry: "
                    "the storage agent's use of a bucket's key (bucket create) and the transfer agent's bucket "
                    "access (transfer job create). IAM changes take about 2 minutes to propagate, sometimes 7.",
    )
    generation: StrictInt = Field(
        1, ge=1, le=999,
        description="Build generation of the stack's custom IAM roles: their ids end in `G<generation>`, because a "
                    "deleted custom role's id cannot be reused for 7-37 days. Add one before a rebuild.",
    )

    def role_id(self, base: str) -> str:
        """The id of custom role `base` in this generation (custom role ids: 3-64 of [a-zA-Z0-9_.])."""
        return f"{base}G{self.generation}"


class StackConfig(Model):
    """The whole stack config of one site."""

    site: Literal["primary", "standby"] = Field(description="Which site this stack is.")
    promoted: bool = Field(False, description="Standby only: true makes the standby site the active one.")
    gcp: GcpSettings = Field(description="Where this site's Google Cloud resources live.")
    labels: dict[str, str] = Field(description="Labels on every labelled resource; `environment` is required.")
    kms: KmsSettings = Field(default_factory=KmsSettings, description="The buckets' encryption keys.")
    deploy: DeploySettings = Field(default_factory=DeploySettings, description="Adoption and rebuild of the stack.")
    bucket_name_prefix: str | None = Field(None, description="Prefix of bucket names; defaults to the project id.")
    primary: PrimarySettings | None = Field(
        None, description="The primary site's own keys; required on, and only on, a primary stack."
    )
    standby: StandbySettings | None = Field(
        None, description="The standby site's own keys; required on, and only on, a standby stack."
    )
    database_backup: DatabaseBackupSettings | None = Field(
        None, description="Scheduled backups of the database into this site's dump bucket."
    )
    vercel_secret_values: dict[str, SecretSiteValues] | None = Field(
        None, description="Secret: per-site values of `standby.vercel.secretVariables`."
    )
    monitoring: MonitoringSettings = Field(description="Alerting of this site (at least one channel).")
    recovery: RecoverySettings = Field(default_factory=RecoverySettings, description="Objectives and capabilities.")
    slack_auth_token: SecretStr | None = Field(None, description="Secret: Slack auth token for alerts.")
    config_vault_secrets: dict[str, SecretStr] | None = Field(
        None, description="Secret: values of the secret settings of primary.configVault, by name."
    )
    cloudflare_export_token: SecretStr | None = Field(
        None, description="Secret: a read-only Cloudflare DNS token for the daily zone export."
    )
    database_url: SecretStr | None = Field(None, description="Secret: libpq URL of the database to back up.")
    scratch_database_url: SecretStr | None = Field(
        None, description="Secret: libpq URL of the empty database the restore check restores into."
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key '{key}' must be lowercase letters, digits, '_' or '-', starting with a letter")
            if not isinstance(label, str):
                raise ValueError(f"label '{key}' must have a text value")
            if len(label) > 63:
                raise ValueError(f"label '{key}' value is {len(label)} characters; Google Cloud allows at most 63")
            if not _LABEL_VALUE.match(label):
                raise ValueError(f"label '{key}' value '{label}' must be lowercase letters, digits, '_' or '-'")
        if Label.ENVIRONMENT not in value:
            raise ValueError("an `environment` label is required (e.g. environment: prod)")
        return {Label.MANAGED_BY.value: defaults.MANAGED_BY_LABEL, **value}

    @field_validator("bucket_name_prefix")
    @classmethod
    def _bucket_name(cls, value: str | None) -> str | None:
        return check_bucket_name(value)

    @model_validator(mode="before")
    @classmethod
    def _layout_before_sections(cls, data: Any) -> Any:
        data = migrated(data)
        misplaced = misplaced_section(data)
        if misplaced:  # before the section's own fields are checked: what is wrong is where it is
            raise ValueError(misplaced)
        return data

    @model_validator(mode="after")
    def _site_rules(self) -> StackConfig:
        # The other site's section is refused before validation (misplaced_section), by the keys it holds.
        own = self.primary if self.site == "primary" else self.standby
        if own is None:
            needed = [field.alias for field in SITE_SECTIONS[self.site].model_fields.values() if field.is_required()]
            raise ValueError(f"a {self.site} stack needs its `{self.site}` section (at least "
                             f"{', '.join(f'`{self.site}.{key}`' for key in needed)})")
        if self.site == "primary" and self.promoted:
            raise ValueError("`promoted` belongs to a standby stack; a primary stack must not set it")
        if self.primary is not None and GCP_REGIONS[self.primary.standby_region] == self.gcp.continent:
            raise ValueError(
                f"primary.standbyRegion {self.primary.standby_region} is on the same continent as {self.gcp.region}: "
                "a regional outage can take both; pick a region on another continent"
            )
        return self

    @model_validator(mode="after")
    def _image_in_this_sites_registry(self) -> StackConfig:
        # The program creates the repository the jobs pull from, in the site's region, so a regional outage
        # of the other site never stops this site's backups: the image must be there.
        if self.database_backup is not None:
            repository = repository_url(self.gcp.project, self.gcp.region, defaults.IMAGE_REPOSITORY_ID) + "/"
            image = self.database_backup.image
            if not in_repository(image, self.gcp.project, self.gcp.region, defaults.IMAGE_REPOSITORY_ID):
                raise ValueError(
                    f"databaseBackup.image '{image}' is not in this site's repository "
                    f"{repository}: the program creates that repository and `make image` pushes the image there"
                )
            tag = re.fullmatch(r"[^:@]+:([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})", image.removeprefix(repository))
            if tag is None or tag[1] == "latest":
                raise ValueError(
                    f"databaseBackup.image '{image}' needs a release tag (NAME:TAG, not :latest nor a digest): the "
                    "repository's tags are immutable, `make image` pushes one per release, and a restore runs the "
                    "image the backup was made with"
                )
        return self

    @model_validator(mode="after")
    def _config_backups(self) -> StackConfig:
        export = self.database_backup.dns_export if self.database_backup else None
        if export is not None and self.failover is None:
            raise ValueError("databaseBackup.dnsExport exports the failover zone: it needs `standby.failover`")
        return self

    @model_validator(mode="after")
    def _no_stray_secrets(self) -> StackConfig:
        # A secret value nothing reads is a mistake (a renamed setting, a typo): say so rather than keep it.
        pairs = (
            ("primary.configVault settings marked secret", "configVaultSecrets",
             {s.name for s in self.config_vault.settings if s.secret} if self.config_vault else set(),
             set(self.config_vault_secrets or {})),
            ("standby.vercel.secretVariables", "vercelSecretValues",
             set(self.vercel.secret_variables) if self.vercel else set(), set(self.vercel_secret_values or {})),
        )
        for declared_by, key, declared, given in pairs:
            stray = sorted(given - declared)
            if stray:
                raise ValueError(f"the secret `{key}` has values for {stray}, which are not among the "
                                 f"{declared_by} {sorted(declared)}; remove them or declare them there")
        return self

    @property
    def own_primary(self) -> PrimarySettings:
        """The `primary` section, which validation requires of a primary stack."""
        if self.primary is None:
            raise ValueError(f"a {self.site} stack has no `primary` section")
        return self.primary

    @property
    def own_standby(self) -> StandbySettings:
        """The `standby` section, which validation requires of a standby stack."""
        if self.standby is None:
            raise ValueError(f"a {self.site} stack has no `standby` section")
        return self.standby

    @property
    def config_vault(self) -> ConfigVaultSettings | None:
        """The primary's settings vault (none on a standby)."""
        return self.primary.config_vault if self.primary else None

    @property
    def failover(self) -> FailoverSettings | None:
        """The standby's traffic switch (none on a primary)."""
        return self.standby.failover if self.standby else None

    @property
    def vercel(self) -> VercelSettings | None:
        """The standby's Vercel env vars (none on a primary)."""
        return self.standby.vercel if self.standby else None

    @property
    def active(self) -> bool:
        """Whether this site serves traffic now: the primary unless the standby is promoted."""
        return self.site == "primary" or self.promoted

    @property
    def name_prefix(self) -> str:
        """Prefix of globally unique names (buckets): the config's, or the project id."""
        return self.bucket_name_prefix or self.gcp.project
