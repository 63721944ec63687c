"""The drill's results: measured figures beside the recovery model's estimates and the objectives.

Two clocks: every step is timed in wall seconds, and a wait the drill compresses (a TTL, an uptime check's
period, an alert's duration) also has its length in the plan's clock. A scenario's RTO in the plan's clock is
the sum of its steps' plan seconds (its measured RTO when it recorded no steps); the RTO objective is met when
that plus the declared decision time is within it.

A scenario is met when its RTO and RPO are within the objectives, its recovered data matches the workload's
ledger with no unexplained loss, and no measurement is worse than the model's estimate by more than
MODEL_FACTOR: term by term (a term's plan-clock seconds against the model's term of the same name), and for
RTO, RPO, restore throughput and replica lag. A finding names the term or the parameter to correct. The text
and Markdown renderings are in render.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.contracts import LogField
from core.limits import RESTORE_MB_PER_SECOND
from core.recovery_estimates import DECIDE, TERMS, Assessment, Term

MODEL_FACTOR = 2.0
# A restore shorter than this says more about pg_restore's start-up than about throughput.
MIN_THROUGHPUT_CHECK_MB = 256.0


@dataclass(frozen=True)
class Step:
    """One timed step of a recovery: the term it belongs to, its wall seconds, and its length in the plan's clock.

    A step of real work takes as long in the plan's clock as on the wall. A wait the drill compresses (a DNS TTL,
    an uptime check's period, an alert's duration, a transfer interval) is `compressed`: its plan-clock length is
    the uncompressed one (wall seconds times the drill's time scale, or the plan's own figure where it is known).
    """

    term: str
    what: str
    wall_seconds: float
    plan_seconds: float
    compressed: bool = False
    not_compared: str | None = None
    """Why this step is shown but not held to the model's term (a restore too small to say anything about
    throughput), or None."""

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object."""
        return {"term": self.term, "what": self.what, "wallSeconds": _round(self.wall_seconds),
                "planClockSeconds": _round(self.plan_seconds), "compressed": self.compressed,
                "notCompared": self.not_compared}


@dataclass(frozen=True)
class CommandRun:
    """An operator command a scenario ran, as the runbook gives it, and how it ended."""

    argv: tuple[str, ...]
    exit_code: int
    wall_seconds: float
    report: str = ""
    """What the command printed for the operator (its timed health report), secrets scrubbed."""

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object (its exit code under the key the job's log line uses)."""
        return {"command": " ".join(self.argv), LogField.EXIT_CODE.value: self.exit_code, "wallSeconds": _round(self.wall_seconds),
                "report": self.report}


@dataclass(frozen=True)
class Yardstick:
    """What the recovery model measures a scenario against; each scenario's module declares its own."""

    assessment: str
    """The readiness table's scenario whose objectives apply (`regionalOutage`, `dataDeletion`...)."""
    estimated: bool = True
    """The model estimates this scenario's RTO and RPO (else only the objectives apply)."""
    rpo_objective: bool = True
    """The assessment's RPO objective applies too (not where a scenario borrows only its RTO objective)."""
    restores_dump: bool = False
    """It restores from a dump: a restore slower than the model assumes is a finding."""
    replica: bool = False
    """It relies on the replica: a replica lagging more than the model allows is a finding."""
    own_rpo_estimate: str | None = None
    """The scenario sets its RPO estimate itself, from the plan (this says how), instead of the assessment's: a
    recovery path the model's worst case does not take (the dump behind PITR)."""


@dataclass
class ScenarioResult:
    """What one scenario measured and what it found."""

    scenario: str
    measured_rto_seconds: float | None
    lost_rows: int
    measured_rpo_seconds: float
    data_ok: bool
    explanation: str
    evidence: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    estimated_rto_seconds: float | None = None
    estimated_rpo_seconds: float | None = None
    target_rto_seconds: float | None = None
    target_rpo_seconds: float | None = None
    model_findings: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    """The recovery's timed steps, by term (empty for a scenario not yet timed step by step)."""
    commands: list[CommandRun] = field(default_factory=list)
    decision_seconds: float = 0.0
    """The declared human decision time (the model's `decide` term): never measured, shown as its own column."""
    assessment: str | None = None
    """The readiness table's scenario it is measured against (its Yardstick's), so a record reads alone."""
    modelled: list[Term] = field(default_factory=list)
    """The model's terms for this scenario (empty when the model does not estimate it)."""
    plan_clock_seconds: float | None = None
    """The scenario's own critical path in the plan's clock, where compressed waits run beside real work (the
    regional outage's DNS propagation beside its redeploy); None: the default of `plan_clock_rto_seconds`."""

    @property
    def plan_clock_rto_seconds(self) -> float | None:
        """The RTO in the plan's clock: the measured (wall) RTO with each compressed wait at its plan length - the
        scenario's own critical path where it gives one, else every compressed step counted as on the path."""
        if self.measured_rto_seconds is None:
            return None
        if self.plan_clock_seconds is not None:
            return self.plan_clock_seconds
        return self.measured_rto_seconds + sum(s.plan_seconds - s.wall_seconds for s in self.steps if s.compressed)

    @property
    def rto_met(self) -> bool:
        """Recovered, and the plan-clock RTO plus the declared decision within the RTO objective."""
        clock = self.plan_clock_rto_seconds
        return clock is not None and (
            self.target_rto_seconds is None or clock + self.decision_seconds <= self.target_rto_seconds)

    def terms(self) -> list[dict[str, Any]]:
        """Each term that applies (the model's, then any measured one the model lacks): measured wall seconds,
        plan-clock seconds and the model's seconds."""
        names = [term.name for term in self.modelled]
        names += [name for name in TERMS if name not in names and any(s.term == name for s in self.steps)]
        modelled = {term.name: term for term in self.modelled}
        rows = []
        for name in names:
            steps = [step for step in self.steps if step.term == name]
            model = modelled.get(name)
            wall = sum(step.wall_seconds for step in steps) if steps else None
            clock = sum(step.plan_seconds for step in steps) if steps else None
            if name == DECIDE:
                clock = self.decision_seconds
            rows.append({"term": name, "measuredSeconds": _round(wall), "planClockSeconds": _round(clock),
                         "modelledSeconds": None if model is None or model.minutes is None
                         else _round(model.minutes * 60),
                         "notCompared": next((s.not_compared for s in steps if s.not_compared), None)})
        return rows

    @property
    def rpo_met(self) -> bool:
        """Within the RPO objective."""
        return self.target_rpo_seconds is None or self.measured_rpo_seconds <= self.target_rpo_seconds

    @property
    def met(self) -> bool:
        """Objectives met, data verified, the model not contradicted."""
        return self.failure is None and self.rto_met and self.rpo_met and self.data_ok and not self.model_findings

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object."""
        return {
            "scenario": self.scenario,
            "measuredRtoSeconds": _round(self.measured_rto_seconds),
            "estimatedRtoSeconds": _round(self.estimated_rto_seconds),
            "targetRtoSeconds": _round(self.target_rto_seconds),
            "lostRows": self.lost_rows,
            "measuredRpoSeconds": _round(self.measured_rpo_seconds),
            "estimatedRpoSeconds": _round(self.estimated_rpo_seconds),
            "targetRpoSeconds": _round(self.target_rpo_seconds),
            "dataVerified": self.data_ok,
            "explanation": self.explanation,
            "modelFindings": self.model_findings,
            "failure": self.failure,
            "met": self.met,
            "evidence": self.evidence,
            "planClockRtoSeconds": _round(self.plan_clock_rto_seconds),
            "decisionSeconds": _round(self.decision_seconds),
            "assessment": self.assessment,
            "terms": self.terms(),
            "commands": [command.to_json() for command in self.commands],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def apply_model(result: ScenarioResult, yardstick: Yardstick, assessments: dict[str, Assessment]) -> None:
    """Fill in the objective, the declared decision and the model's estimate and terms, and compare the
    measurements with the model: RTO (plan clock + decision) and RPO, then term by term."""
    result.assessment = yardstick.assessment
    assessment = assessments.get(yardstick.assessment)
    if assessment is None:
        return
    result.target_rto_seconds = assessment.target_rto_minutes * 60
    if yardstick.rpo_objective:
        result.target_rpo_seconds = None if assessment.target_rpo_minutes is None else assessment.target_rpo_minutes * 60
    decide = assessment.term(DECIDE)
    if not result.decision_seconds and decide is not None and decide.minutes is not None:
        result.decision_seconds = decide.minutes * 60
    if not yardstick.estimated:
        return
    result.modelled = list(assessment.terms)
    if assessment.rto.minutes is not None:
        result.estimated_rto_seconds = assessment.rto.minutes * 60
    if yardstick.own_rpo_estimate is None and assessment.rpo is not None and assessment.rpo.minutes is not None:
        result.estimated_rpo_seconds = assessment.rpo.minutes * 60
    clock = result.plan_clock_rto_seconds
    for what, measured, estimate, derivation in (
            ("RTO", None if clock is None else clock + result.decision_seconds, result.estimated_rto_seconds,
             assessment.rto.derivation),
            ("RPO", result.measured_rpo_seconds, result.estimated_rpo_seconds,
             yardstick.own_rpo_estimate or (assessment.rpo.derivation if assessment.rpo else ""))):
        if measured is not None and estimate is not None and measured > MODEL_FACTOR * max(estimate, 1.0):
            result.model_findings.append(f"measured {what} {measured:.0f} s is more than {MODEL_FACTOR:g}x the "
                                         f"model's {estimate:.0f} s ({derivation})")
    result.model_findings += compare_terms(result)


def compare_terms(result: ScenarioResult) -> list[str]:
    """Findings that name a term: measured in the plan's clock more than MODEL_FACTOR x the model's term, measured
    where the model has no such term, or modelled but never measured by a scenario that recorded steps."""
    if not result.steps:
        return []
    modelled = {term.name: term for term in result.modelled}
    findings = []
    for row in result.terms():
        name, clock = row["term"], row["planClockSeconds"]
        model = modelled.get(name)
        if name == DECIDE:
            continue
        if model is None:
            findings.append(f"term {name}: {clock:.0f} s in the plan's clock, but the model has no {name} term")
        elif row["measuredSeconds"] is None:
            findings.append(f"term {name}: the model counts {_model_seconds(model)} ({model.derivation}) but the "
                            "drill never measured it")
        elif row["notCompared"] is None and model.minutes is not None and clock > MODEL_FACTOR * max(model.minutes * 60, 1.0):
            findings.append(f"term {name}: {clock:.0f} s in the plan's clock is more than {MODEL_FACTOR:g}x the "
                            f"model's {_model_seconds(model)} ({model.derivation})")
    return findings


def _model_seconds(term: Term) -> str:
    return "an unbounded time" if term.minutes is None else f"{term.minutes * 60:.0f} s"


def check_throughput(results: list[ScenarioResult], yardsticks: Mapping[str, Yardstick], throughput: dict[str, Any],
                     declared: dict[str, Any]) -> None:
    """Compare measured restore throughput and replica lag with the model's inputs; name the parameter if wrong."""
    restore = throughput.get("restoreMbPerSecond")
    restored_mb = throughput.get("restoredMb") or 0.0
    assumed = float(declared.get("restoreMbPerSecond", RESTORE_MB_PER_SECOND))
    if restore is not None and restored_mb >= MIN_THROUGHPUT_CHECK_MB and restore * MODEL_FACTOR < assumed:
        finding = (f"recovery.restoreMbPerSecond is {assumed:g} MB/s but the restore ran at {restore:.1f} MB/s "
                   f"(more than {MODEL_FACTOR:g}x slower): set it to {restore:.0f}")
        for result in results:
            if yardsticks[result.scenario].restores_dump:
                result.model_findings.append(finding)
    lag = throughput.get("replicaLagSeconds")
    replica = declared.get("databaseReplica") or {}
    allowed = float(replica.get("maxLagMinutes", 1)) * 60
    if lag is not None and replica.get("enabled") and lag > MODEL_FACTOR * allowed:
        for result in results:
            if yardsticks[result.scenario].replica:
                result.model_findings.append(f"recovery.databaseReplica.maxLagMinutes is {allowed / 60:g} min but "
                                             f"the replica lagged {lag:.0f} s")


def as_json(results: list[ScenarioResult]) -> str:
    """`--json`: one object per scenario."""
    return json.dumps([r.to_json() for r in results], indent=2)
