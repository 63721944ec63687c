"""The figures of the recovery model that a drill measures, and where each comes from.

Three of the figures the estimates start from are measurable on a drill: the restore throughput
(`restoreMbPerSecond`), the replica's lag (`databaseReplica.maxLagMinutes`) and the granularity of point-in-time
recovery (`pitr.rpoMinutes`). For each, in this order of precedence:

1. the value the stack file declares (`raptorflow-dr:recovery` in Pulumi.<stack>.yaml): the team's own figure;
2. else the worst a met drill measured within a quarter of the newest such measurement (tools/readiness.py reads
   docs/drills/): a measurement beats a guess, and a model of the worst case takes the worst seen lately - the
   slowest restore, the longest lag, the coarsest PITR granularity - not the last, which a lightly loaded drill
   may have flattered;
3. else, for the restore throughput, the newest benchmark record (docs/benchmarks-*.json) of the schema kind;
4. else the plan's default (core/limits.py).

The restore throughput depends on what the database holds, so it is chosen per schema kind (`recovery.schemaKind`,
application or bulk): the drill's schema is an application's, so a drill measures that kind; `make bench` measures
both (its `app` and `random` datasets); and the default is the kind's measured figure.

A RecoveryObjectives declaration lists the figures its stack file left to the default as `undeclaredFigures`
(components/recovery_objectives.py), so the model can tell a declared 35 MB/s from the default 35 MB/s. The drill
itself measures against the declared-or-default model, never against its own earlier measurements.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
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
    by_kind: Mapping[str, float] | None = None
    """The default per schema kind, for a figure measured and chosen per kind; None for one figure for all."""
    lower_is_worse: bool = False
    """Whether a lower measurement is the worse one (a throughput) rather than a higher one (a lag)."""

    def kinds(self, declarations: Iterable[Mapping[str, Any]]) -> Sequence[str | None]:
        """The schema kinds the declarations hold (the figure is chosen once per kind), or [None]."""
        if self.by_kind is None:
            return [None]
        return [*sorted({kind_of(d) for d in declarations})]

    def key(self, kind: str | None) -> str:
        """Its key among measurements: the path, and the schema kind for a figure chosen per kind."""
        return self.path if kind is None else f"{self.path}@{kind}"

    def default_for(self, kind: str | None) -> float:
        return float(self.by_kind[kind]) if self.by_kind is not None and kind is not None else float(self.default)


def kind_of(declaration: Mapping[str, Any]) -> str:
    """The schema kind a declaration states (the plan's default when it states none)."""
    kind = declaration.get("schemaKind")
    return kind if isinstance(kind, str) and kind in limits.SCHEMA_KINDS else limits.SCHEMA_KIND


LEARNABLE: tuple[Learnable, ...] = (
    Learnable("restoreMbPerSecond", "restore throughput", "MB/s", limits.RESTORE_MB_PER_SECOND,
              limits.RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND, lower_is_worse=True),
    Learnable("databaseReplica.maxLagMinutes", "replica lag", "min", limits.DATABASE_REPLICA_LAG_MINUTES),
    Learnable("pitr.rpoMinutes", "PITR granularity", "min", limits.PITR_RPO_MINUTES),
)


@dataclass(frozen=True)
class Measured:
    """A figure a drill measured, and the record that says so."""

    value: float
    record: str
    """The record's file name (docs/drills/<record>, or docs/<record> for a benchmark)."""
    date: str
    by: str = "drill"
    """What measured it: the drill, or the benchmark."""


@dataclass(frozen=True)
class Figure:
    """The value the model uses for one learnable figure, and where it came from."""

    learnable: Learnable
    value: float
    source: str
    kind: str | None = None
    """The schema kind it is chosen for, if it is chosen per kind."""

    def to_json(self) -> dict[str, Any]:
        """The figure as JSON."""
        shown = {"figure": self.learnable.path, "title": self.learnable.title, "value": self.value,
                 "unit": self.learnable.unit, "source": self.source}
        return shown if self.kind is None else {**shown, "schemaKind": self.kind}

    def line(self) -> str:
        """`restore throughput 20.2 MB/s, application schema (measured by the drill of ...)`."""
        shown = (f"{self.value * 60:.3g} s" if self.learnable.unit == "min" and self.value < 1
                 else f"{self.value:g} {self.learnable.unit}")
        kind = f", {self.kind} schema" if self.kind else ""
        return f"{self.learnable.title} {shown}{kind} ({self.source})"


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
    another stack's declared value, else the measurement given (tools/readiness.py: the worst of the last quarter),
    else the default; and those figures with their sources (only those of capabilities declared: no PITR
    granularity without PITR)."""
    pairs = list(resources)
    declarations = [props for kind, props in pairs if kind == ResourceType.RECOVERY_OBJECTIVES]
    figures: list[Figure] = []
    chosen: dict[str, float] = {}
    for learnable in LEARNABLE:
        if not declarations or not _enabled(declarations, learnable):
            continue
        for kind in learnable.kinds(declarations):
            group = [d for d in declarations if kind is None or kind_of(d) == kind]
            declared = [d for d in group if learnable.path not in (d.get(UNDECLARED) or [])]
            key = learnable.key(kind)
            if declared:
                value = float(lookup(declared[0], learnable.path, learnable.default_for(kind)))
                figures.append(Figure(learnable, value, f"declared by the {declared[0].get('site')} stack", kind))
                chosen[key] = value
            elif key in measured:
                found = measured[key]
                figures.append(Figure(learnable, found.value, f"measured by the {found.by} of {found.date}, "
                                                              f"{found.record}", kind))
                chosen[key] = found.value
            else:
                figures.append(Figure(learnable, learnable.default_for(kind), "the plan's default, core/limits.py",
                                      kind))
    learned: list[tuple[str, Mapping[str, Any]]] = []
    by_path = {learnable.path: learnable for learnable in LEARNABLE}
    for resource_type, props in pairs:
        undeclared = [(path, by_path[path].key(kind_of(props) if by_path[path].by_kind else None))
                      for path in (props.get(UNDECLARED) or []) if path in by_path] \
            if resource_type == ResourceType.RECOVERY_OBJECTIVES else []
        undeclared = [(path, key) for path, key in undeclared if key in chosen]
        if undeclared:
            copied = copy.deepcopy(dict(props))
            for path, key in undeclared:
                _set(copied, path, chosen[key])
            props = copied
        learned.append((resource_type, props))
    return learned, figures
