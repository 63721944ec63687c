"""The figures of the recovery model that a drill measures, and where each comes from.

Three of the figures the estimates start from are measurable on a drill: the restore throughput
(`restoreMbPerSecond`), the replica's lag (`databaseReplica.maxLagMinutes`) and the granularity of point-in-time
recovery (`pitr.rpoMinutes`). For each, in this order of precedence:

1. the value the stack file declares (`raptorflow-dr:recovery` in Pulumi.<stack>.yaml): the team's own figure;
2. else the newest drill record that measured it (tools/readiness.py reads docs/drills/): a measurement beats a guess;
3. else the plan's default (core/limits.py).

A RecoveryObjectives declaration lists the figures its stack file left to the default as `undeclaredFigures`
(components/recovery_objectives.py), so the model can tell a declared 35 MB/s from the default 35 MB/s. The drill
itself measures against the declared-or-default model, never against its own earlier measurements.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core import limits
from core.contracts import ResourceType
from core.paths import lookup

UNDECLARED = "undeclaredFigures"
"""The RecoveryObjectives property listing the learnable figures its stack file does not set."""


@dataclass(frozen=True)
class Learnable:
    """A figure of the model a drill can measure."""

    path: str
    """Its path under `raptorflow-dr:recovery` (and in the declaration's properties)."""
    title: str
    unit: str
    default: float


LEARNABLE: tuple[Learnable, ...] = (
    Learnable("restoreMbPerSecond", "restore throughput", "MB/s", limits.RESTORE_MB_PER_SECOND),
    Learnable("databaseReplica.maxLagMinutes", "replica lag", "min", limits.DATABASE_REPLICA_LAG_MINUTES),
    Learnable("pitr.rpoMinutes", "PITR granularity", "min", limits.PITR_RPO_MINUTES),
)


@dataclass(frozen=True)
class Measured:
    """A figure a drill measured, and the record that says so."""

    value: float
    record: str
    """The record's file name (docs/drills/<record>)."""
    date: str


@dataclass(frozen=True)
class Figure:
    """The value the model uses for one learnable figure, and where it came from."""

    learnable: Learnable
    value: float
    source: str

    def to_json(self) -> dict[str, Any]:
        """The figure as JSON."""
        return {"figure": self.learnable.path, "title": self.learnable.title, "value": self.value,
                "unit": self.learnable.unit, "source": self.source}

    def line(self) -> str:
        """`restore throughput 20.2 MB/s (measured by the drill of ...)`."""
        shown = (f"{self.value * 60:.3g} s" if self.learnable.unit == "min" and self.value < 1
                 else f"{self.value:g} {self.learnable.unit}")
        return f"{self.learnable.title} {shown} ({self.source})"


def _set(props: dict[str, Any], path: str, value: float) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        props = props.setdefault(part, {})
    props[leaf] = value


def _enabled(declarations: list[Mapping[str, Any]], learnable: Learnable) -> bool:
    """Whether the figure's capability (`pitr`, `databaseReplica`) is declared at all; top-level figures always are."""
    parent = learnable.path.rpartition(".")[0]
    return not parent or any(lookup(d, f"{parent}.enabled") for d in declarations)


def with_measured(resources: Iterable[tuple[str, Mapping[str, Any]]], measured: Mapping[str, Measured],
                  ) -> tuple[list[tuple[str, Mapping[str, Any]]], list[Figure]]:
    """The resources with every declaration that leaves a figure to the default given the figure the model uses:
    another stack's declared value, else the newest measurement, else the default; and those figures with their
    sources (only those of capabilities declared: no PITR granularity without PITR)."""
    pairs = list(resources)
    declarations = [props for kind, props in pairs if kind == ResourceType.RECOVERY_OBJECTIVES]
    figures: list[Figure] = []
    chosen: dict[str, float] = {}
    for learnable in LEARNABLE:
        if not declarations or not _enabled(declarations, learnable):
            continue
        declared = [d for d in declarations if learnable.path not in (d.get(UNDECLARED) or [])]
        if declared:
            value = float(lookup(declared[0], learnable.path, learnable.default))
            figures.append(Figure(learnable, value, f"declared by the {declared[0].get('site')} stack"))
            chosen[learnable.path] = value
        elif learnable.path in measured:
            found = measured[learnable.path]
            figures.append(Figure(learnable, found.value, f"measured by the drill of {found.date}, {found.record}"))
            chosen[learnable.path] = found.value
        else:
            figures.append(Figure(learnable, float(learnable.default), "the plan's default, core/limits.py"))
    learned: list[tuple[str, Mapping[str, Any]]] = []
    for kind, props in pairs:
        undeclared = [path for path in (props.get(UNDECLARED) or []) if path in chosen] \
            if kind == ResourceType.RECOVERY_OBJECTIVES else []
        if undeclared:
            copied = copy.deepcopy(dict(props))
            for path in undeclared:
                _set(copied, path, chosen[path])
            props = copied
        learned.append((kind, props))
    return learned, figures
