"""The parts a recovery estimate is made of: the terms of the time to recover, how they compose into an RTO, and one
scenario's assessment against its objectives (core/recovery_model.py computes them from the plans)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERMS = ("detect", "decide", "apply", "propagate", "redeploy", "restore")
"""The terms of a recovery's time; the model estimates each that applies, the drill measures each (`decide`, the
human decision, is declared, never measured)."""
DETECT, DECIDE, APPLY, PROPAGATE, REDEPLOY, RESTORE = TERMS
PARALLEL = (PROPAGATE, REDEPLOY)
"""Terms that start together when the apply ends: the slower of them counts."""


@dataclass(frozen=True)
class Estimate:
    """A duration in minutes (None: unbounded) and how it was derived."""

    minutes: float | None
    derivation: str

    def worse(self, other: Estimate) -> Estimate:
        """The larger of two estimates (unbounded beats everything)."""
        if self.minutes is None:
            return self
        if other.minutes is None or other.minutes > self.minutes:
            return other
        return self


@dataclass(frozen=True)
class Term:
    """One term of a recovery's time: its name (one of TERMS), minutes (None: unbounded) and how derived."""

    name: str
    minutes: float | None
    derivation: str

    def to_json(self) -> dict[str, Any]:
        """The term as JSON."""
        return {"term": self.name, "minutes": self.minutes, "derivation": self.derivation}


def compose(terms: list[Term]) -> Estimate:
    """The RTO of these terms: each in sequence, except the PARALLEL ones, which run side by side (the slower
    counts); unbounded when any term is."""
    shown = [f"{t.name} {_hours(t.minutes)}" if t.minutes is not None else f"{t.name} unbounded ({t.derivation})"
             for t in terms]
    side = [index for index, term in enumerate(terms) if term.name in PARALLEL]
    if len(side) > 1:
        shown[side[0]:side[-1] + 1] = [f"max({', '.join(shown[side[0]:side[-1] + 1])})"]
    if any(term.minutes is None for term in terms):
        return Estimate(None, " + ".join(shown))
    in_sequence = sum(t.minutes or 0.0 for t in terms if t.name not in PARALLEL)
    return Estimate(in_sequence + max((t.minutes or 0.0 for t in terms if t.name in PARALLEL), default=0.0),
                    " + ".join(shown))


@dataclass
class Assessment:
    """One scenario: targets, computed worst cases, verdict and what binds; `rto` is composed from `terms`."""

    scenario: str
    target_rto_minutes: int
    target_rpo_minutes: int | None
    rto: Estimate
    rpo: Estimate | None
    terms: list[Term] = field(default_factory=list)
    """The terms of the time to recover that apply to this scenario, in the order they happen."""

    def term(self, name: str) -> Term | None:
        """The named term, or None when it does not apply to this scenario."""
        return next((term for term in self.terms if term.name == name), None)

    @property
    def rpo_met(self) -> bool:
        """Whether the worst-case recovery point meets the target (True when there is no target)."""
        if self.target_rpo_minutes is None or self.rpo is None:
            return True
        return self.rpo.minutes is not None and self.rpo.minutes <= self.target_rpo_minutes

    @property
    def rto_met(self) -> bool:
        """Whether the estimated time to recover meets the target."""
        return self.rto.minutes is not None and self.rto.minutes <= self.target_rto_minutes

    @property
    def met(self) -> bool:
        """Both objectives met."""
        return self.rpo_met and self.rto_met

    @property
    def binding(self) -> str:
        """The constraint that decides the verdict."""
        if not self.rpo_met:
            assert self.rpo is not None  # an assessment without an RPO estimate always meets its RPO
            return f"RPO: {self.rpo.derivation}"
        if not self.rto_met:
            return f"RTO: {self.rto.derivation}"
        return f"RPO: {self.rpo.derivation}" if self.rpo is not None else f"RTO: {self.rto.derivation}"

    def to_json(self) -> dict[str, Any]:
        """The assessment as JSON."""
        return {
            "scenario": self.scenario,
            "targetRtoMinutes": self.target_rto_minutes,
            "targetRpoMinutes": self.target_rpo_minutes,
            "rtoMinutes": self.rto.minutes,
            "rtoDerivation": self.rto.derivation,
            "rpoMinutes": None if self.rpo is None else self.rpo.minutes,
            "rpoDerivation": None if self.rpo is None else self.rpo.derivation,
            "met": self.met,
            "binding": self.binding,
            "terms": [term.to_json() for term in self.terms],
        }


def _hours(minutes: float) -> str:
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"
