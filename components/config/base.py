"""What every config section shares: the namespace, the error type, the base model and common checks."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, get_args

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from core.regions import GCP_REGIONS
from core.schedule import max_interval_hours

from .. import defaults

NAMESPACE = defaults.PROJECT_NAME

_OBJECT_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_MEMBER = re.compile(r"^(serviceAccount|group|user):[^@\s]+@[^@\s]+$")


def check_object_prefix(value: str) -> str:
    if not _OBJECT_PREFIX.match(value) or any(part in (".", "..") for part in value.split("/")):
        raise ValueError(f"'{value[:100]}' is not an object prefix: letters, digits, '.', '_', '-' and '/' between "
                         "parts, without '.' or '..' parts or a leading '/'")
    return value


def check_members(value: tuple[str, ...]) -> tuple[str, ...]:
    for member in value:
        if not _MEMBER.match(member):
            raise ValueError(f"'{member}' is not an IAM principal such as serviceAccount:deploy@PROJECT.iam.gserviceaccount.com")
    return value


def sections(annotation: Any) -> list[type[BaseModel]]:
    """The config sections an annotation holds: itself, or inside Optional, a list or a map's values."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in sections(arg)]


class ConfigError(pulumi.RunError):
    """Invalid stack config: the message names the stack file, each bad key and what is allowed."""


class Model(BaseModel):
    """Base of every config section: camelCase keys as in the YAML, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True)


def check_region(value: str) -> str:
    if value not in GCP_REGIONS:
        close = difflib.get_close_matches(value, GCP_REGIONS, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else f"one of {', '.join(sorted(GCP_REGIONS))}"
        raise ValueError(f"'{value}' is not a Google Cloud region; {hint}")
    return value


_CRON_FIELD = re.compile(r"^[0-9*/,-]+$")


def check_cron(value: str) -> str:
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise ValueError(
            f"'{value}' is not a cron schedule: five fields (minute hour day-of-month month day-of-week) "
            "of digits, '*', '/', ',' and '-', e.g. '0 2 * * *'"
        )
    try:
        max_interval_hours(value)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a usable cron schedule: {exc}") from None
    return value


HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
CLOUDFLARE_ID = re.compile(r"^[0-9a-f]{32}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    """A check that a text matches `pattern`; its error says the value is not `what`."""

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"'{value[:100]}' is not {what}")
        return value

    return AfterValidator(check)


# Field types that carry their check: a field declared with one is validated wherever it appears.
Cron = Annotated[str, AfterValidator(check_cron)]
"""A five-field cron schedule (UTC) whose longest gap can be computed."""
ObjectPrefix = Annotated[str, AfterValidator(check_object_prefix)]
"""An object prefix: path parts of letters, digits, '.', '_' and '-'."""
Principals = Annotated[tuple[str, ...], AfterValidator(check_members)]
"""IAM principals such as serviceAccount:deploy@PROJECT.iam.gserviceaccount.com."""
DomainName = Annotated[str, matching(HOSTNAME, "a domain name")]


def cloudflare_id(kind: str) -> AfterValidator:
    """The check of a Cloudflare id of `kind` (record, zone, account): 32 hex characters."""
    return matching(CLOUDFLARE_ID, f"a Cloudflare {kind} id (32 hex characters)")
