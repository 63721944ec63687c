"""Storage: the backup buckets (retention, classes, soft delete) and the standby site's replicas of them."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StrictInt, model_validator

from core.contracts import DATABASE_DUMPS, USER_FILES, BucketRole

from .. import defaults
from .base import Model, matching

_TIME_OF_DAY = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class StorageClassTransition(Model):
    """Move objects to a colder storage class once they are this old."""

    age_days: StrictInt = Field(ge=1, description="Object age in days at which the move happens.")
    storage_class: Literal["NEARLINE", "COLDLINE", "ARCHIVE"] = Field(description="The colder class.")


_COLDNESS = {"NEARLINE": 1, "COLDLINE": 2, "ARCHIVE": 3}


class BackupBucketSettings(Model):
    """A backup bucket: how long it keeps objects and how it guards them."""

    retention_days: StrictInt = Field(
        ge=1, le=defaults.RETENTION_DAYS_MAX, description="Days every object is kept and cannot be deleted or replaced."
    )
    lock_retention: bool = Field(False, description="Lock the retention policy. Irreversible: only when compliance asks.")
    soft_delete_days: StrictInt = Field(
        defaults.SOFT_DELETE_DAYS_DEFAULT,
        ge=defaults.SOFT_DELETE_DAYS_MIN,
        le=defaults.SOFT_DELETE_DAYS_MAX,
        description="Days a deleted object can still be restored (7-90).",
    )
    storage_class_transitions: tuple[StorageClassTransition, ...] = Field(
        (), description="Colder storage classes after given ages, youngest first."
    )
    access_log_retention_days: StrictInt = Field(
        defaults.ACCESS_LOG_RETENTION_DAYS, ge=1, description="Days the bucket's access logs are kept."
    )

    @model_validator(mode="after")
    def _transitions_in_order(self) -> BackupBucketSettings:
        previous_age, previous_cold = 0, 0
        for index, step in enumerate(self.storage_class_transitions):
            if step.age_days <= previous_age or _COLDNESS[step.storage_class] <= previous_cold:
                raise ValueError(
                    f"storageClassTransitions[{index}]: each step must be older and colder than the one before"
                )
            if step.age_days >= self.retention_days:
                raise ValueError(
                    f"storageClassTransitions[{index}]: ageDays {step.age_days} must be below "
                    f"retentionDays {self.retention_days}, when objects are deleted"
                )
            previous_age, previous_cold = step.age_days, _COLDNESS[step.storage_class]
        return self


class DatabaseDumpBucketSettings(BackupBucketSettings):
    """The bucket of database dumps (the plan keeps them 30 days)."""

    retention_days: StrictInt = Field(
        defaults.RETENTION_DAYS[DATABASE_DUMPS.config_key], ge=1, le=defaults.RETENTION_DAYS_MAX, description="Days dumps are kept."
    )


class TransferSettings(Model):
    """The Storage Transfer Service job that keeps a replica in sync."""

    start_time_utc: Annotated[str, matching(_TIME_OF_DAY, "a time of day; use HH:MM (24 h, UTC), e.g. 02:00")] = Field(
        defaults.TRANSFER_START_TIME_UTC, description="Daily start of the full sync, HH:MM in UTC."
    )
    event_driven: bool = Field(
        False, description="Also replicate new objects as they arrive (Storage Transfer event-driven replication)."
    )

    @property
    def hours(self) -> int:
        """Hour of `start_time_utc`."""
        return int(self.start_time_utc[:2])

    @property
    def minutes(self) -> int:
        """Minute of `start_time_utc`."""
        return int(self.start_time_utc[3:])

    @property
    def cron(self) -> str:
        """The daily schedule as cron (UTC)."""
        return f"{self.minutes} {self.hours} * * *"


class DatabaseDumpReplicaSettings(DatabaseDumpBucketSettings):
    """The standby site's copy of the database-dump bucket."""

    transfer: TransferSettings = Field(default_factory=TransferSettings, description="How the copy is kept.")


class UserFilesReplicaSettings(BackupBucketSettings):
    """The standby site's copy of the user-files bucket (the plan keeps it 90 days)."""

    retention_days: StrictInt = Field(
        defaults.RETENTION_DAYS[USER_FILES.config_key], ge=1, le=defaults.RETENTION_DAYS_MAX, description="Days copies are kept."
    )
    transfer: TransferSettings = Field(default_factory=TransferSettings, description="How the copy is kept.")


class ReplicaSet(Model):
    """The standby site's copies of the primary site's buckets."""

    database_dumps: DatabaseDumpReplicaSettings = Field(
        default_factory=DatabaseDumpReplicaSettings, description="Copy of the dump bucket."
    )
    user_files: UserFilesReplicaSettings = Field(
        default_factory=UserFilesReplicaSettings, description="Copy of the user-files bucket."
    )

    def of(self, role: BucketRole) -> DatabaseDumpReplicaSettings | UserFilesReplicaSettings:
        """The copy of the bucket with this role: the field whose key is the role's config key."""
        by_key = {field.alias: getattr(self, name) for name, field in type(self).model_fields.items()}
        return by_key[role.config_key]
