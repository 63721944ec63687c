"""What is provisioned meets every declared recovery point objective (the recovery model in core/)."""

from __future__ import annotations

from pulumi_policy import Severity

from core.recovery_model import TITLES, assess

from .._base import RECOVERY, Weakening, stack_policy


def _minutes(value) -> str:
    return "unbounded" if value is None else f"{value:g} min"


def _check(args, violate):
    declaration = next((r for r in args.resources if r.resource_type == RECOVERY), None)
    for assessment in assess((r.resource_type, r.props) for r in args.resources):
        if not assessment.rpo_met:
            assert assessment.rpo is not None  # an assessment without an RPO estimate always meets its RPO
            violate(f"{TITLES[assessment.scenario]}: worst-case data loss {_minutes(assessment.rpo.minutes)} exceeds "
                    f"the {_minutes(assessment.target_rpo_minutes)} objective ({assessment.rpo.derivation})",
                    declaration.urn if declaration else None)


POLICY = stack_policy(
    "raptorflow-objectives-rpo",
    "The provisioned schedules and replication meet each declared RPO.",
    "DR plan objectives",
    Severity.HIGH,
    "shorten the schedule, add event-driven replication, or declare the capability (PITR, a replica) you have",
    _check,
)

WEAKENINGS = [
    Weakening("prod", "database corruption: worst-case data loss 1440 min exceeds the 60 min objective (database: "
              "full dump every 24 h (0 2 * * *); add an hourly schedule or declare PITR)",
              "recovery", {"pitr.enabled": False}),
    Weakening("dr", "regional outage: worst-case data loss 1440 min exceeds the 15 min objective (user files: "
              "user-files copied every 24 h; add event-driven replication)",
              removed=("user-files-replica-replication",)),
]
