"""Vault: the application settings kept in Secret Manager."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import ENV_NAME, Model, Principals


class VaultSetting(Model):
    """One application setting kept in Secret Manager."""

    name: str = Field(description="The setting's name (env var style, e.g. SUPABASE_URL).")
    secret: bool = Field(True, description="Whether the value is secret (then it lives in configVaultSecrets).")
    value: str | None = Field(None, description="The plain value; only for settings marked secret: false.")

    @model_validator(mode="after")
    def _where_the_value_lives(self) -> VaultSetting:
        if not ENV_NAME.match(self.name):
            raise ValueError(f"'{self.name}' is not a setting name (A-Z, 0-9, _)")
        if self.secret and self.value is not None:
            raise ValueError(f"{self.name} is secret: its value goes in the secret `configVaultSecrets`, "
                             f"never in plain text (pulumi config set --secret --path 'configVaultSecrets.{self.name}')")
        if not self.secret and self.value is None:
            raise ValueError(f"{self.name} is marked secret: false, so it needs a plain `value`")
        return self


class ConfigVaultSettings(Model):
    """Application settings and secrets in Secret Manager, replicated to both sites' regions."""

    settings: tuple[VaultSetting, ...] = Field(min_length=1, description="The settings to keep.")
    cmek: bool = Field(False, description="Encrypt with customer-managed keys (one per region).")
    readers: Principals = Field((), description="Principals that may read the values (e.g. the deploy identity).")

    @model_validator(mode="after")
    def _unique(self) -> ConfigVaultSettings:
        names = [s.name for s in self.settings]
        if len(set(names)) != len(names):
            raise ValueError(f"each setting once; got {names}")
        return self
