"""The recovery readiness report: each scenario's objectives against what the plans provision, and what the last
drill measured.

The last drill comes from the newest record in docs/drills/ that measured the scenario and met its objectives
(tools/drill/records.py, JSON only): its date, its RTO (in the plan's clock, plus the declared decision, as the
estimate counts it) and its RPO. A failed drill (not met, or a recovery step failed) measured nothing: it neither
fills the columns nor resets the cadence, and a failed drill newer than the last met one is a warning line
naming its date. Warnings also name a last drill older than the plan's quarterly cadence (`DRILL_CADENCE_DAYS`),
a record dated after today, and each record the table could not read (skipped, never in silence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from core.limits import DRILL_CADENCE_DAYS
from core.recovery_model import TITLES, Assessment, assess
from tools.drill.records import FOLDER, Drills, LastDrill
from tools.offline import ROOT, Plan, unwrap

DRILLS = ROOT / FOLDER


def assess_plans(plans: list[Plan]) -> list[Assessment]:
    """The recovery model over the resources of these plans together."""
    return assess((r.type, unwrap(r.inputs)) for plan in plans for r in plan.resources)


def _minutes(value: float | None) -> str:
    if value is None:
        return "unbounded"
    return f"{value / 60:.1f} h" if value >= 120 else f"{value:.0f} min"


def _drilled(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return _minutes(seconds / 60) if seconds >= 60 else f"{seconds:.0f} s"


def render_readiness(assessments: list[Assessment], stacks: list[str],
                     drills: Mapping[str, LastDrill] | None = None) -> Iterable[str]:
    """The readiness table; `drills` (`last_drills(DRILLS)`) fills the last drill's columns."""
    drills = drills or {}
    yield f"recovery readiness ({' + '.join(stacks)}):"
    yield (f"  {'scenario':<20} {'RTO target':>10} {'RTO est.':>9} {'RPO target':>10} {'RPO worst':>9}  verdict   "
           f"{'last drill':<10} {'RTO drill':>9} {'RPO drill':>9}  binding constraint")
    for a in assessments:
        verdict = "met" if a.met else "NOT MET"
        rpo_target = "-" if a.target_rpo_minutes is None else _minutes(a.target_rpo_minutes)
        rpo = "-" if a.rpo is None else _minutes(a.rpo.minutes)
        drill = drills.get(a.scenario)
        last = ("never", "-", "-") if drill is None else (drill.date, _drilled(drill.rto_seconds),
                                                          _drilled(drill.rpo_seconds))
        yield (f"  {TITLES[a.scenario]:<20} {_minutes(a.target_rto_minutes):>10} {_minutes(a.rto.minutes):>9} "
               f"{rpo_target:>10} {rpo:>9}  {verdict:<8}  {last[0]:<10} {last[1]:>9} {last[2]:>9}  {a.binding}")


def drill_warnings(assessments: list[Assessment], drills: Mapping[str, LastDrill], today: date) -> list[str]:
    """Warnings: the records that could not be read, those dated after `today`, the scenarios never drilled (or
    only in failed drills), each whose newest drill failed, and each whose last drill is older than the quarterly
    cadence."""
    found = drills if isinstance(drills, Drills) else Drills()
    warnings = [f"warning: skipped the drill record {FOLDER}/{why}; run `python -m tools.drill verify`"
                for why in found.skipped]
    warnings += [f"warning: the drill record {FOLDER}/{name} is dated {started}, after today ({today})"
                 for name, started in found.started if started > today]
    never = [TITLES[a.scenario] for a in assessments if a.scenario not in drills]
    if never:
        warnings.append(f"warning: never drilled (no record in {FOLDER}/ measured them): {', '.join(never)}")
    for a in assessments:
        failed = found.failed.get(a.scenario)
        if failed is not None:
            met = drills.get(a.scenario)
            since = "no drill of it has met its objectives" if met is None else f"the last drill that met them was on {met.date}"
            warnings.append(f"warning: {TITLES[a.scenario]}: the drill of {failed} FAILED; {since}")
        drill = drills.get(a.scenario)
        age = None if drill is None else (today - date.fromisoformat(drill.date)).days
        if drill is not None and age is not None and age > DRILL_CADENCE_DAYS:
            warnings.append(f"warning: {TITLES[a.scenario]} was last drilled on {drill.date}, {age} days ago: older "
                            f"than the plan's quarterly cadence ({DRILL_CADENCE_DAYS} days); run `make drill`")
    return warnings
