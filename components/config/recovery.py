"""Recovery: the objectives per scenario and the capabilities and figures the estimates use."""

from __future__ import annotations

from typing import Self

from pydantic import Field, StrictFloat, StrictInt, model_validator

from core.limits import RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND, SchemaKind

from .. import defaults
from .base import Model


class ScenarioObjective(Model):
    """A scenario's targets: how long recovery may take, and how much data may be lost."""

    rto_minutes: StrictInt = Field(ge=1, description="Recovery time objective, minutes.")
    rpo_minutes: int | None = Field(None, ge=0, description="Recovery point objective, minutes (none: n/a).")


def _objective(scenario: str) -> ScenarioObjective:
    return ScenarioObjective(**defaults.OBJECTIVES[scenario])


class Objectives(Model):
    """The plan's objectives per scenario."""

    database_corruption: ScenarioObjective = Field(
        default_factory=lambda: _objective("databaseCorruption"), description="Bad data written to the database."
    )
    regional_outage: ScenarioObjective = Field(
        default_factory=lambda: _objective("regionalOutage"), description="The primary region is lost."
    )
    security_breach: ScenarioObjective = Field(
        default_factory=lambda: _objective("securityBreach"), description="Credentials leaked; rotate and redeploy."
    )
    data_deletion: ScenarioObjective = Field(
        default_factory=lambda: _objective("dataDeletion"), description="Data deleted by mistake."
    )


class PitrCapability(Model):
    """Supabase point-in-time recovery (WAL archiving): an add-on, declared here, not provisioned."""

    enabled: bool = Field(False, description="Whether the Supabase project has PITR.")
    window_days: StrictInt = Field(defaults.PITR_WINDOW_DAYS, ge=1, le=35, description="How far back PITR reaches.")
    rpo_minutes: StrictInt = Field(defaults.PITR_RPO_MINUTES, ge=0, description="Worst-case loss of PITR (WAL shipping).")


class DatabaseReplicaCapability(Model):
    """A Supabase read replica in another region that can take over: declared, not provisioned."""

    enabled: bool = Field(False, description="Whether a cross-region replica exists.")
    region: str | None = Field(None, description="The replica's (Supabase) region.")
    max_lag_minutes: StrictInt = Field(defaults.DATABASE_REPLICA_LAG_MINUTES, ge=0, description="Worst replication lag.")
    promote_minutes: StrictInt = Field(defaults.DATABASE_REPLICA_PROMOTE_MINUTES, ge=1, description="Time to promote it.")


class RecoverySettings(Model):
    """Declared objectives and capabilities, and the figures recovery-time estimates use."""

    objectives: Objectives = Field(default_factory=Objectives, description="Targets per scenario.")
    pitr: PitrCapability = Field(default_factory=PitrCapability, description="Supabase point-in-time recovery.")
    database_replica: DatabaseReplicaCapability = Field(
        default_factory=DatabaseReplicaCapability, description="A cross-region read replica of the database."
    )
    database_size_gb: StrictFloat = Field(defaults.DATABASE_SIZE_GB, gt=0, description="Database size for restores, GB.")
    schema_kind: SchemaKind = Field(
        defaults.SCHEMA_KIND,
        description="What the database holds, for the default restore throughput: application (many tables with "
        "indexes and foreign keys; text, JSON, numbers) or bulk (a few large tables of data that does not compress).",
    )
    restore_mb_per_second: StrictFloat = Field(
        defaults.RESTORE_MB_PER_SECOND, gt=0,
        description="Restore throughput, database MB/s (default: the figure measured for the schema kind, "
        "core/limits.py).",
    )
    decision_minutes: StrictInt = Field(defaults.DECISION_MINUTES, ge=0, description="Detect and decide, minutes.")
    apply_minutes: StrictInt = Field(defaults.APPLY_MINUTES, ge=0, description="A `pulumi up` of the switch, minutes.")
    event_driven_lag_minutes: StrictInt = Field(
        defaults.EVENT_DRIVEN_LAG_MINUTES, ge=0, description="Worst lag of event-driven replication, minutes."
    )

    @model_validator(mode="after")
    def _kinds_throughput(self) -> Self:
        """A throughput the stack file leaves out is the one measured for its schema kind. Written past the
        fields-set bookkeeping, so the figure still counts as undeclared (components/recovery_objectives.py)."""
        if "restore_mb_per_second" not in self.model_fields_set:
            self.__dict__["restore_mb_per_second"] = float(RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND[self.schema_kind])
        return self
