"""The recovery readiness report: each scenario's objectives against what the plans provision."""

from __future__ import annotations

from collections.abc import Iterable

from core.recovery_model import TITLES, Assessment, assess
from tools.offline import Plan, unwrap


def assess_plans(plans: list[Plan]) -> list[Assessment]:
    """The recovery model over the resources of these plans together."""
    return assess((r.type, unwrap(r.inputs)) for plan in plans for r in plan.resources)


def _minutes(value: float | None) -> str:
    if value is None:
        return "unbounded"
    return f"{value / 60:.1f} h" if value >= 120 else f"{value:.0f} min"


def render_readiness(assessments: list[Assessment], stacks: list[str]) -> Iterable[str]:
    """The readiness table."""
    yield f"recovery readiness ({' + '.join(stacks)}):"
    yield f"  {'scenario':<20} {'RTO target':>10} {'RTO est.':>9} {'RPO target':>10} {'RPO worst':>9}  verdict   binding constraint"
    for a in assessments:
        verdict = "met" if a.met else "NOT MET"
        rpo_target = "-" if a.target_rpo_minutes is None else _minutes(a.target_rpo_minutes)
        rpo = "-" if a.rpo is None else _minutes(a.rpo.minutes)
        yield (f"  {TITLES[a.scenario]:<20} {_minutes(a.target_rto_minutes):>10} {_minutes(a.rto.minutes):>9} "
               f"{rpo_target:>10} {rpo:>9}  {verdict:<8}  {a.binding}")
