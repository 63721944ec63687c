"""Which secrets a stack needs, and where the model holds them."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, SecretStr

from .stack import StackConfig


@dataclass(frozen=True)
class RequiredSecret:
    """A secret config key the stack needs, given what it builds."""

    path: str
    """Key under the project's namespace; dotted for a value inside a map (`configVaultSecrets.NAME`)."""
    purpose: str
    """What the value is, for the prompt and the error."""

    def command(self, stack: str) -> str:
        """The CLI command that sets it; without a value the CLI prompts for it, so it never lands in history."""
        path_flag = " --path" if "." in self.path else ""
        return f"pulumi config set --secret{path_flag} --stack {stack} '{self.path}'"


def required_secrets(config: StackConfig) -> list[RequiredSecret]:
    """Every secret `config` needs: the one place that says which secret goes with which setting."""
    needed = []
    if config.database_backup is not None:
        needed.append(RequiredSecret("databaseUrl", "libpq URL of the database to back up"))
        needed.append(RequiredSecret("scratchDatabaseUrl", "libpq URL of the scratch database of the restore check"))
        if config.database_backup.dns_export is not None:
            needed.append(RequiredSecret("cloudflareExportToken", "read-only Cloudflare DNS token for the zone export"))
    if config.monitoring.notifications.slack is not None:
        needed.append(RequiredSecret("slackAuthToken", "Slack auth token of the alert channel"))
    for setting in config.config_vault.settings if config.config_vault else ():
        if setting.secret:
            needed.append(RequiredSecret(f"configVaultSecrets.{setting.name}", f"value of the setting {setting.name}"))
    for name in config.vercel.secret_variables if config.vercel else ():
        for site in ("primary", "standby"):
            needed.append(RequiredSecret(f"vercelSecretValues.{name}.{site}", f"Vercel {name} on the {site} site"))
    return needed


def missing_secrets_message(stack: str, missing: list[RequiredSecret]) -> str:
    lines = [f"stack {stack} lacks {len(missing)} secret(s); set all at once with `python -m tools.secrets {stack}`, "
             "or each with (the CLI prompts for the value):"]
    lines += [f"    {secret.command(stack)}    # {secret.purpose}" for secret in missing]
    return "\n  ".join(lines)


def _holds_secret(annotation: Any) -> bool:
    """Whether a field's type is, or contains, a SecretStr."""
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_secret(field.annotation) for field in annotation.model_fields.values())
    return any(_holds_secret(arg) for arg in getattr(annotation, "__args__", ()))


@functools.cache
def secret_keys_of_model() -> frozenset[str]:
    """Top-level keys whose values are secrets, read off the model's SecretStr fields."""
    return frozenset(field.alias or name for name, field in StackConfig.model_fields.items()
                     if _holds_secret(field.annotation))


def secret_paths(model: BaseModel, prefix: str = "") -> list[str]:
    """Dotted keys of every SecretStr field set in `model`."""
    paths = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = f"{prefix}{field.alias or name}"
        if isinstance(value, SecretStr):
            paths.append(key)
        elif isinstance(value, BaseModel):
            paths.extend(secret_paths(value, f"{key}."))
        elif isinstance(value, dict):
            for item_key, item in value.items():
                if isinstance(item, SecretStr):
                    paths.append(f"{key}.{item_key}")
                elif isinstance(item, BaseModel):
                    paths.extend(secret_paths(item, f"{key}.{item_key}."))
    return paths
