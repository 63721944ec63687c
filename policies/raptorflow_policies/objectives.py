"""Objectives rule: what is provisioned meets every declared recovery point objective."""

from __future__ import annotations

from pulumi_policy import Severity

from core.recovery_model import TITLES, assess

from ._base import RECOVERY, stack_policy


def _minutes(value) -> str:
    return "unbounded" if value is None else f"{value:g} min"


def _rpo(args, violate):
    declaration = next((r for r in args.resources if r.resource_type == RECOVERY), None)
    for assessment in assess((r.resource_type, r.props) for r in args.resources):
        if not assessment.rpo_met:
            assert assessment.rpo is not None  # an assessment without an RPO estimate always meets its RPO
            violate(f"{TITLES[assessment.scenario]}: worst-case data loss {_minutes(assessment.rpo.minutes)} exceeds "
                    f"the {_minutes(assessment.target_rpo_minutes)} objective ({assessment.rpo.derivation})",
                    declaration.urn if declaration else None)


objectives_rpo = stack_policy(
    "raptorflow-objectives-rpo",
    "The provisioned schedules and replication meet each declared RPO.",
    "DR plan objectives",
    Severity.HIGH,
    "shorten the schedule, add event-driven replication, or declare the capability (PITR, a replica) you have",
    _rpo,
)

POLICIES = [objectives_rpo]
