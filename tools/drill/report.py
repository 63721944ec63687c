"""The drill's report: measured figures beside the recovery model's estimates and the objectives.

A scenario is met when its measured RTO and RPO are within the objectives, its recovered data matches
the workload's ledger with no unexplained loss, and no measurement is worse than the model's estimate by
more than MODEL_FACTOR (then the model is wrong, and the report names the parameter to correct).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.limits import RESTORE_MB_PER_SECOND
from core.recovery_model import Assessment

MODEL_FACTOR = 2.0
# A restore shorter than this says more about pg_restore's start-up than about throughput.
MIN_THROUGHPUT_CHECK_MB = 256.0


TERMS = ("detect", "decide", "apply", "propagate", "redeploy", "restore")
"""The terms of a recovery, in the order they happen; the recovery model estimates each and the drill measures
each (`decide` is the human decision: declared, never measured)."""


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

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object."""
        return {"term": self.term, "what": self.what, "wallSeconds": _round(self.wall_seconds),
                "planClockSeconds": _round(self.plan_seconds), "compressed": self.compressed}


@dataclass(frozen=True)
class CommandRun:
    """An operator command a scenario ran, as the runbook gives it, and how it ended."""

    argv: tuple[str, ...]
    exit_code: int
    wall_seconds: float
    report: str = ""
    """What the command printed for the operator (its timed health report), secrets scrubbed."""

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object."""
        return {"command": " ".join(self.argv), "exitCode": self.exit_code, "wallSeconds": _round(self.wall_seconds),
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

    @property
    def rto_met(self) -> bool:
        """Recovered, within the RTO objective."""
        return self.measured_rto_seconds is not None and (
            self.target_rto_seconds is None or self.measured_rto_seconds <= self.target_rto_seconds)

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
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def apply_model(result: ScenarioResult, yardstick: Yardstick, assessments: dict[str, Assessment]) -> None:
    """Fill in the objective and the model's estimate, and compare the measurements with the model."""
    assessment = assessments.get(yardstick.assessment)
    if assessment is None:
        return
    result.target_rto_seconds = assessment.target_rto_minutes * 60
    if yardstick.rpo_objective:
        result.target_rpo_seconds = None if assessment.target_rpo_minutes is None else assessment.target_rpo_minutes * 60
    if not yardstick.estimated:
        return
    if assessment.rto.minutes is not None:
        result.estimated_rto_seconds = assessment.rto.minutes * 60
    if assessment.rpo is not None and assessment.rpo.minutes is not None:
        result.estimated_rpo_seconds = assessment.rpo.minutes * 60
    for what, measured, estimate, derivation in (
            ("RTO", result.measured_rto_seconds, result.estimated_rto_seconds, assessment.rto.derivation),
            ("RPO", result.measured_rpo_seconds, result.estimated_rpo_seconds,
             assessment.rpo.derivation if assessment.rpo else "")):
        if measured is not None and estimate is not None and measured > MODEL_FACTOR * max(estimate, 1.0):
            result.model_findings.append(f"measured {what} {measured:.0f} s is more than {MODEL_FACTOR:g}x the "
                                         f"model's {estimate:.0f} s ({derivation})")


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


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 120:
        return f"{value / 60:.0f} min"
    return f"{value:.1f} s"


def _verdict(result: ScenarioResult) -> str:
    if result.met:
        return "met"
    if result.failure:
        return "FAILED"
    if not result.data_ok:
        return "DATA LOSS"
    if result.model_findings:
        return "MODEL WRONG"
    return "MISSED"


COLUMNS = ("scenario", "RTO measured", "RTO est.", "RTO target", "lost rows", "RPO measured", "RPO est.",
           "RPO target", "verdict")


def rows(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    """The table's rows (shared by text and Markdown)."""
    return [(r.scenario, _seconds(r.measured_rto_seconds), _seconds(r.estimated_rto_seconds),
             _seconds(r.target_rto_seconds), str(r.lost_rows), _seconds(r.measured_rpo_seconds),
             _seconds(r.estimated_rpo_seconds), _seconds(r.target_rpo_seconds), _verdict(r)) for r in results]


def _notes(results: list[ScenarioResult], throughput: dict[str, Any]) -> list[str]:
    lines = [f"throughput: dump {throughput.get('dumpMbPerSecond', '-')} MB/s, restore "
             f"{throughput.get('restoreMbPerSecond', '-')} MB/s ({throughput.get('restoredMb', '-')} MB restored; "
             f"the model assumes {throughput.get('assumedRestoreMbPerSecond', '-')} MB/s), replica lag "
             f"{throughput.get('replicaLagSeconds', '-')} s at most"]
    for result in results:
        lines.append(f"{result.scenario}: {result.explanation}")
        if result.failure:
            lines.append(f"  FAILED: {result.failure}")
        ledger = result.evidence.get("ledger") or {}
        if ledger and not ledger.get("ok"):
            lines.append(f"  ledger: {ledger['rows']} rows, checksums {'ok' if ledger['checksumOk'] else 'WRONG'}, "
                         f"acknowledged but missing {ledger['missing'][:10]}, not written by the client "
                         f"{ledger['foreign'][:10]}")
        lines += [f"  model: {finding}" for finding in result.model_findings]
    return lines


def text(results: list[ScenarioResult], world: dict[str, Any], throughput: dict[str, Any]) -> str:
    """The plain-text report."""
    table = [COLUMNS, *rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = [f"recovery drill: database {world['databaseMb']:.0f} MB, {world['durationSeconds']:.0f} s, "
             f"time scale 1:{world['timeScale']:g} (TTLs and transfer intervals compressed)"]
    lines += ["  " + "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)) for row in table]
    lines += ["", *_notes(results, throughput),
              "estimates: core.recovery_model for this database size (they include the declared decision time, "
              "which a drill does not measure)"]
    return "\n".join(lines)


def markdown(results: list[ScenarioResult], world: dict[str, Any], throughput: dict[str, Any]) -> str:
    """The Markdown record for the quarterly drill file."""
    lines = [f"# Recovery drill {world['startedAt']}", "",
             f"- database: {world['databaseMb']:.0f} MB; duration {world['durationSeconds']:.0f} s; "
             f"time scale 1:{world['timeScale']:g}; commit `{world.get('commit', '?')}`",
             f"- verdict: {'all objectives met' if all(r.met for r in results) else 'NOT MET'}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    lines += ["", *[f"- {line.strip()}" for line in _notes(results, throughput)], "",
              "Measured on one machine with the stand-ins listed in docs/drill.md; estimates from "
              "core/recovery_model.py with this database size.", ""]
    return "\n".join(lines)


def as_json(results: list[ScenarioResult]) -> str:
    """`--json`: one object per scenario."""
    return json.dumps([r.to_json() for r in results], indent=2)
