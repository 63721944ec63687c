"""The keys only one site has: the `primary` section of the prod stack and the `standby` section of the dr stack.

These two models are the one place that says which key belongs to which site: a key of the other site is
not among a section's fields, so validation names it (and `StackConfig` refuses a section on the wrong site).
"""

from __future__ import annotations

import functools
import re
from typing import Annotated

from pydantic import Field, field_validator

from .base import Model, check_region, matching
from .failover import FailoverSettings, VercelSettings
from .storage import DatabaseDumpBucketSettings, ReplicaSet
from .vault import ConfigVaultSettings

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")
StackName = Annotated[str, matching(_STACK_NAME, "a stack name; use org/project/stack, e.g. acme/raptorflow-dr/prod")]


def check_bucket_name(value: str | None) -> str | None:
    """A Cloud Storage bucket name (or None), as the API accepts it."""
    if value is not None and not _BUCKET_NAME.match(value):
        raise ValueError(f"'{value}' is not a valid bucket name: 3-63 lowercase letters, digits, '-', '_', '.'")
    if value is not None and (value.startswith("goog") or "google" in value):
        raise ValueError(f"'{value}': Cloud Storage refuses bucket names that start with 'goog' or contain 'google'")
    return value


class PrimarySettings(Model):
    """The primary site's own keys (`site: primary`): its dump bucket, the user files the standby copies, where
    the copies live, and the settings vault."""

    user_files_bucket: str = Field(description="Name of the existing user-files bucket the standby site copies.")
    standby_region: str = Field(
        description="The region of the standby site that keeps the copies (on another continent)."
    )
    database_dumps: DatabaseDumpBucketSettings = Field(
        default_factory=DatabaseDumpBucketSettings, description="The dump bucket."
    )
    config_vault: ConfigVaultSettings | None = Field(
        None, description="Application settings and secrets in Secret Manager, replicated into the standby region."
    )

    @field_validator("user_files_bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        check_bucket_name(value)
        return value

    @field_validator("standby_region")
    @classmethod
    def _standby_region(cls, value: str) -> str:
        return check_region(value)


class StandbySettings(Model):
    """The standby site's own keys (`site: standby`): the primary stack it reads, its copies of the primary's
    buckets, and the traffic switch it owns (so it can fail over while the primary region is down)."""

    prod_stack: StackName = Field(description="The primary stack, as org/project/stack.")
    replicas: ReplicaSet = Field(default_factory=ReplicaSet, description="The copies of the primary's buckets.")
    failover: FailoverSettings | None = Field(None, description="The DNS traffic switch.")
    vercel: VercelSettings | None = Field(None, description="Env vars switched on failover.")


SITE_SECTIONS: dict[str, type[Model]] = {"primary": PrimarySettings, "standby": StandbySettings}
"""The section of each site, by the value of `site`; its key in the stack file is the site's name."""


@functools.cache
def site_of_key() -> dict[str, str]:
    """The site whose section holds each site-only key (`prodStack` -> `standby`): read off the section models."""
    return {field.alias or name: site for site, model in SITE_SECTIONS.items()
            for name, field in model.model_fields.items()}
