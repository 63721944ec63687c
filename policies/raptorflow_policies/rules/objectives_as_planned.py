"""The declared recovery objectives are the plan's or stricter, and the figures behind the estimates no rosier."""

from __future__ import annotations

from pulumi_policy import Severity

from core import limits
from core.recovery_learned import LEARNABLE, UNDECLARED

from .._base import BUCKET, RECOVERY, RUN_JOB, Weakening, get, number, stack_policy

# Declared figures the recovery model starts from: (path, the plan's figure, "min" when a smaller declaration
# flatters the estimate - it must be at least the plan's - or "max" when a larger one does).
# The restore throughput's figure is the one measured for the schema kind the stack declares (core/limits.py).
FIGURES = (
    ("restoreMbPerSecond", limits.RESTORE_MB_PER_SECOND, "max"),
    ("eventDrivenLagMinutes", limits.EVENT_DRIVEN_LAG_MINUTES, "min"),
    ("applyMinutes", limits.APPLY_MINUTES, "min"),
    ("decisionMinutes", limits.DECISION_MINUTES, "min"),
    ("databaseReplica.promoteMinutes", limits.DATABASE_REPLICA_PROMOTE_MINUTES, "min"),
    ("databaseReplica.maxLagMinutes", limits.DATABASE_REPLICA_LAG_MINUTES, "min"),
    ("pitr.rpoMinutes", limits.PITR_RPO_MINUTES, "min"),
    ("pitr.windowDays", limits.PITR_WINDOW_DAYS, "max"),
)


def _check(args, violate):
    declarations = [r for r in args.resources if r.resource_type == RECOVERY]
    if not declarations:
        if any(r.resource_type in (BUCKET, RUN_JOB) for r in args.resources):
            violate("the stack declares no recovery objectives (RecoveryObjectives): nothing checks its RPOs")
        return
    declared = declarations[0]
    for scenario, plan in limits.OBJECTIVES.items():
        for key, target in plan.items():
            value = number(get(declared.props, f"objectives.{scenario}.{key}"))
            if target is not None and (value is None or value > target):
                violate(f"{scenario} {key} is declared {value}; the plan's is {target}", declared.urn)
    kind = get(declared.props, "schemaKind") or limits.SCHEMA_KIND
    if not isinstance(kind, str) or kind not in limits.RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND:
        violate(f"schemaKind is declared {kind!r}; the plan measured {', '.join(limits.SCHEMA_KINDS)}", declared.urn)
        return
    if kind != limits.SCHEMA_KIND and "restoreMbPerSecond" in (get(declared.props, UNDECLARED) or []):
        violate(f"schemaKind is declared {kind!r} but restoreMbPerSecond is left to that kind's default: declare "
                "the throughput a restore of this database measured (no drill measures this kind)", declared.urn)
    for path, figure, bound in FIGURES:
        per_kind = path == "restoreMbPerSecond"
        if per_kind:
            figure = limits.RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND[kind]
        value = number(get(declared.props, path))
        if value is None:
            continue
        if value <= 0 or (value < figure if bound == "min" else value > figure):
            better = "lower" if bound == "min" else "higher"
            of_kind = f" for {'an' if kind[0] in 'aeiou' else 'a'} {kind} schema" if per_kind else ""
            violate(f"{path} is declared {value:g}, {better} than the plan's measured {figure:g}{of_kind}: the "
                    "recovery estimates would be rosier than what was measured", declared.urn)
    if (number(get(declared.props, "databaseSizeGb")) or 0) <= 0:
        violate("databaseSizeGb is declared 0: every restore estimate would take no time", declared.urn)


POLICY = stack_policy(
    "raptorflow-objectives-as-planned",
    "The stack declares its recovery objectives, each no looser than the plan's, and the figures the estimates "
    "start from (restore throughput, lags, decision and apply times, PITR) no rosier than the plan's measured ones.",
    "DR plan objectives",
    Severity.HIGH,
    "keep the plan's objectives and measured figures in core/limits.py; change them there, with the measurement",
    _check,
)

_RPO = limits.OBJECTIVES["databaseCorruption"]["rpoMinutes"]
_LOOSER_RPO = float(10 * (_RPO or 0))
_ROSIER_RATE = float(10 * limits.RESTORE_MB_PER_SECOND)
UNDECLARED_BY_DEFAULT = [learnable.path for learnable in LEARNABLE]  # what the repo's stack files leave out
_BULK_ROSIER_RATE = float(2 * limits.RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND["bulk"])
WEAKENINGS = [
    Weakening("prod", f"databaseCorruption rpoMinutes is declared {_LOOSER_RPO}; the plan's is {_RPO}", "recovery",
              {"objectives.databaseCorruption.rpoMinutes": _LOOSER_RPO}),
    Weakening("dr", f"restoreMbPerSecond is declared {_ROSIER_RATE:g}, higher than the plan's measured "
              f"{limits.RESTORE_MB_PER_SECOND:g} for an application schema: the recovery estimates would be rosier "
              "than what was measured", "recovery", {"restoreMbPerSecond": _ROSIER_RATE}),
    Weakening("prod", f"restoreMbPerSecond is declared {_BULK_ROSIER_RATE:g}, higher than the plan's measured "
              f"{limits.RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND['bulk']:g} for a bulk schema: the recovery estimates "
              "would be rosier than what was measured", "recovery",
              {"schemaKind": "bulk", "restoreMbPerSecond": _BULK_ROSIER_RATE,
               UNDECLARED: [p for p in UNDECLARED_BY_DEFAULT if p != "restoreMbPerSecond"]}),
    Weakening("dr", "schemaKind is declared 'bulk' but restoreMbPerSecond is left to that kind's default: declare "
              "the throughput a restore of this database measured (no drill measures this kind)", "recovery",
              {"schemaKind": "bulk", "restoreMbPerSecond": float(limits.RESTORE_MB_PER_SECOND_BY_SCHEMA_KIND["bulk"])}),
    Weakening("dr", "schemaKind is declared 'huge'; the plan measured application, bulk", "recovery",
              {"schemaKind": "huge"}),
    Weakening("prod", "the stack declares no recovery objectives (RecoveryObjectives): nothing checks its RPOs",
              removed=("recovery",)),
]
