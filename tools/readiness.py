"""The recovery readiness report: each scenario's objectives against what the plans provision, and what the last
drill measured.

The last drill comes from the newest record in docs/drills/ that measured the scenario and met its objectives
(tools/drill/records.py, JSON only): its date, its RTO (in the plan's clock, plus the declared decision, as the
estimate counts it) and its RPO. A failed drill (not met, or a recovery step failed) measured nothing: it neither
fills the columns nor resets the cadence, and a failed drill newer than the last met one is a warning line
naming its date. Warnings also name a last drill older than the plan's quarterly cadence (`DRILL_CADENCE_DAYS`),
a record dated after today, and each record the table could not read (skipped, never in silence).

The model learns from the drill (core/recovery_learned.py): the restore throughput, the replica's lag and the
granularity of point-in-time recovery, where the stack file does not declare them, come from the drill records:
the worst measurement among those within DRILL_CADENCE_DAYS of the newest one (core/recovery_learned.py), and a
`figures:` line under the table says which figure came from where. The restore throughput
is chosen per schema kind (`recovery.schemaKind`): a drill measures the application kind (its schema is an
application's); where no drill did, the newest benchmark record (`BENCHMARKS`, `make bench`) gives each kind's
figure from the job's restore of its dataset (`app`: application, `random`: bulk) at the largest size it ran. Each is taken only
from a scenario that met its objectives: the restore throughput from a `database-corruption` restore of at least
MIN_THROUGHPUT_CHECK_MB (below it, pg_restore's start-up is most of the time), the replica lag from a drill whose
`regional-outage` was met, and the PITR granularity from the measured RPO of `database-corruption-pitr`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from core.limits import DRILL_CADENCE_DAYS
from core.recovery_learned import LEARNABLE, Figure, Measured, with_measured
from core.recovery_model import TITLES, Assessment, assess
from tools.drill.records import FOLDER, Drills, LastDrill, Record, Unreadable, chain, load
from tools.drill.report import MIN_THROUGHPUT_CHECK_MB
from tools.offline import ROOT, Plan, unwrap

DRILLS = ROOT / FOLDER
BENCHMARKS = ROOT / "docs"
# The schema kind each benchmark dataset stands for (bench/datasets.py), and the kind the drill's schema is.
BENCH_SCHEMA_KINDS = {"app": "application", "random": "bulk"}
DRILL_SCHEMA_KIND = "application"
RESTORE = next(learnable for learnable in LEARNABLE if learnable.path == "restoreMbPerSecond")


PITR_SCENARIO, RESTORE_SCENARIO, REPLICA_SCENARIO = "database-corruption-pitr", "database-corruption", "regional-outage"


def assess_plans(plans: list[Plan], measured: Mapping[str, Measured] | None = None) -> list[Assessment]:
    """The recovery model over the resources of these plans together, with the measured figures (`measured_figures`)
    where the stacks leave them to the default."""
    return assess(with_measured(_resources(plans), measured or {})[0])


def model_figures(plans: list[Plan], measured: Mapping[str, Measured] | None = None) -> list[Figure]:
    """The learnable figures `assess_plans` uses for these plans, with their sources."""
    return with_measured(_resources(plans), measured or {})[1]


def _resources(plans: list[Plan]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(r.type, unwrap(r.inputs)) for plan in plans for r in plan.resources]


def _number(value: Any) -> float | None:
    """A record's figure as a float, or None when it is no finite number at least 0."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return float(value) if ok else None


def _measured_in(document: Mapping[str, Any]) -> dict[str, float]:
    """The learnable figures one record measured in scenarios that met their objectives."""
    met = {s.get("scenario"): s for s in document.get("scenarios") or [] if isinstance(s, Mapping)
           and s.get("met") is True and not s.get("failure")}
    raw = document.get("throughput")
    throughput: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    found: dict[str, float] = {}

    restore, restored = _number(throughput.get("restoreMbPerSecond")), _number(throughput.get("restoredMb"))
    if RESTORE_SCENARIO in met and restore and restored is not None and restored >= MIN_THROUGHPUT_CHECK_MB:
        found[RESTORE.key(DRILL_SCHEMA_KIND)] = restore
    lag = _number(throughput.get("replicaLagSeconds"))
    if REPLICA_SCENARIO in met and lag is not None:
        found["databaseReplica.maxLagMinutes"] = lag / 60
    pitr = _number(met[PITR_SCENARIO].get("measuredRpoSeconds")) if PITR_SCENARIO in met else None
    if pitr is not None:
        found["pitr.rpoMinutes"] = pitr / 60
    return found


def measured_figures(folder: Path, benchmarks: Path | None = None) -> dict[str, Measured]:
    """Each learnable figure's worst measurement among the chained records of `folder` dated within
    DRILL_CADENCE_DAYS of its newest measurement (unreadable records are skipped here; `last_drills` names them),
    then the restore throughputs of the benchmark records of `benchmarks` for the schema kinds no drill measured."""
    seen: dict[str, list[tuple[date, Measured]]] = {}
    records: list[Record] = chain(folder) if folder.is_dir() else []
    for record in reversed(records):  # newest first
        if record.json is None:
            continue
        try:
            document = load(record)
            when = str(document.get("startedAt") or record.json.stem)[:10]
            day = date.fromisoformat(when)
        except (Unreadable, ValueError, OSError):
            continue
        for path, value in _measured_in(document).items():
            seen.setdefault(path, []).append((day, Measured(value, record.json.name, when)))
    found = {key: _worst(key, measured) for key, measured in seen.items()}
    for key, measured in (bench_figures(benchmarks) if benchmarks else {}).items():
        found.setdefault(key, measured)
    return found


def _worst(key: str, measured: list[tuple[date, Measured]]) -> Measured:
    """The worst of a figure's measurements (newest first) dated within DRILL_CADENCE_DAYS of the newest one; the
    newer of two equal ones."""
    learnable = next(item for item in LEARNABLE if item.path == key.partition("@")[0])
    newest = max(day for day, _ in measured)
    recent = [m for day, m in measured if (newest - day).days <= DRILL_CADENCE_DAYS]
    return (min if learnable.lower_is_worse else max)(recent, key=lambda m: m.value)


def bench_figures(folder: Path) -> dict[str, Measured]:
    """Each schema kind's restore throughput from the newest benchmark records of `folder` (benchmarks-DATE*.json,
    `python -m bench --json` output): the job's own row (its automatic mode) at the largest size of that date."""
    rows: list[tuple[str, float, float, str, str]] = []  # (date, size, value, kind, file)
    for path in sorted(folder.glob("benchmarks-*.json")) if folder.is_dir() else []:
        try:
            document = json.loads(path.read_text())
        except (ValueError, OSError):
            continue
        when = path.stem.removeprefix("benchmarks-")[:10]
        for row in document if isinstance(document, list) else []:
            kind = BENCH_SCHEMA_KINDS.get(str(row.get("dataset"))) if isinstance(row, Mapping) else None
            value = _number(row.get("restoreDatabaseMbPerSecond")) if kind else None
            size = row.get("sizeMb") if kind else None
            if kind and row.get("tool") == "backup_job" and value and isinstance(size, int | float):
                rows.append((when, float(size), value, kind, path.name))
    found: dict[str, Measured] = {}
    for when, _, value, kind, name in sorted(rows, key=lambda r: (r[0], r[1], -r[2]), reverse=True):
        found.setdefault(RESTORE.key(kind), Measured(value, name, when, "benchmark"))
    return found


def render_figures(figures: list[Figure]) -> Iterable[str]:
    """The `figures:` line: each learnable figure the model used and where it came from."""
    if figures:
        yield "figures: " + "; ".join(figure.line() for figure in figures)


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


def figure_warnings(figures: list[Figure]) -> list[str]:
    """Warnings on the restore throughputs: stacks that declare different schema kinds (they hold one database; the
    model takes the slowest), and a kind's figure no drill measured (a benchmark's or the default)."""
    restores = [f for f in figures if f.learnable is RESTORE and f.kind is not None]
    warnings = []
    if len({f.kind for f in restores}) > 1:
        warnings.append("warning: the stacks declare different recovery.schemaKind values ("
                        f"{', '.join(sorted(str(f.kind) for f in restores))}) for one database: the model takes the "
                        "slowest restore throughput; declare the same kind in both stack files")
    for f in restores:
        if f.kind != DRILL_SCHEMA_KIND and not f.source.startswith("declared"):
            warnings.append(f"warning: the {f.kind} schema's restore throughput ({f.value:g} MB/s) is {f.source}, "
                            "never a drill of this database (`make drill` restores an application schema): measure "
                            "a restore of it and declare recovery.restoreMbPerSecond")
    return warnings


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
