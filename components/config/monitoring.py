"""Monitoring: notification channels and uptime checks."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, StrictInt, field_validator, model_validator

from .. import defaults
from .base import HOSTNAME, Model


class SlackChannel(Model):
    """A Slack notification channel; its auth token is the secret `slackAuthToken`."""

    channel_name: str = Field(pattern=r"^#[a-z0-9_-]+$", description="Channel, e.g. #incidents.")


class NotificationSettings(Model):
    """Where alerts go. At least one channel."""

    emails: tuple[str, ...] = Field((), description="Email addresses.")
    slack: SlackChannel | None = Field(None, description="Slack channel (token in secret `slackAuthToken`).")

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for address in value:
            if not re.match(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", address):
                raise ValueError(f"'{address}' is not an email address")
        return value

    @model_validator(mode="after")
    def _at_least_one(self) -> NotificationSettings:
        if not self.emails and self.slack is None:
            raise ValueError("at least one notification channel is required: `emails` or `slack`")
        return self


class UptimeSettings(Model):
    """Uptime checks of every failover target."""

    period_seconds: Literal[60, 300, 600, 900] = Field(defaults.UPTIME_PERIOD_SECONDS, description="Check period.")
    timeout_seconds: StrictInt = Field(defaults.UPTIME_TIMEOUT_SECONDS, ge=1, le=60, description="Seconds per check.")
    regions: tuple[Literal["USA", "EUROPE", "SOUTH_AMERICA", "ASIA_PACIFIC"], ...] = Field(
        defaults.UPTIME_REGIONS, min_length=3, description="Checker regions (at least three)."
    )


class MonitoringSettings(Model):
    """Alerting of this site: what is watched is derived from what the stack provisions."""

    @field_validator("site_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            if not HOSTNAME.match(host):
                raise ValueError(f"'{host}' is not a hostname")
        return value

    notifications: NotificationSettings = Field(description="Where alerts go.")
    uptime: UptimeSettings = Field(default_factory=UptimeSettings, description="The uptime checks.")
    site_hosts: tuple[str, ...] = Field(
        (), description="Primary only: this site's own origins to check (the dr stack checks every target too)."
    )
    backup_age_margin_hours: StrictInt = Field(
        defaults.BACKUP_AGE_MARGIN_HOURS, ge=1, le=48,
        description="Hours beyond a schedule's interval before a missing backup alerts.",
    )
    runbook_base_url: str = Field(defaults.RUNBOOK_BASE_URL, pattern=r"^https://", description="Runbooks' URL.")
