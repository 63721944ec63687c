"""The drill's report as text (the terminal) and as Markdown (the record filed in docs/drills/).

One table of every scenario - RTO measured on the wall, the model's estimate, the objective, the RTO in the
plan's clock and the declared decision beside it, lost rows, RPO measured / estimated / objective, verdict -
then per scenario what it did, its terms beside the model's and the operator commands it ran with their exit
codes.
"""

from __future__ import annotations

from typing import Any

from tools.drill.report import ScenarioResult

COLUMNS = ("scenario", "RTO measured", "RTO est.", "RTO target", "RTO plan clock", "decision", "lost rows",
           "RPO measured", "RPO est.", "RPO target", "verdict")
TERM_COLUMNS = ("term", "measured", "plan clock", "model")
CLOCKS = ("measured times are wall seconds; the plan clock is the measured work plus each compressed wait (TTLs, "
          "check periods, alert durations, transfer intervals) at its plan length; an RTO objective is met when the "
          "plan clock plus the declared decision is within it")


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


def rows(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    """The table's rows (shared by text and Markdown)."""
    return [(r.scenario, _seconds(r.measured_rto_seconds), _seconds(r.estimated_rto_seconds),
             _seconds(r.target_rto_seconds), _seconds(r.plan_clock_rto_seconds), _seconds(r.decision_seconds),
             str(r.lost_rows), _seconds(r.measured_rpo_seconds), _seconds(r.estimated_rpo_seconds),
             _seconds(r.target_rpo_seconds), _verdict(r)) for r in results]


def term_rows(result: ScenarioResult) -> list[tuple[str, ...]]:
    """A scenario's terms: measured wall seconds, plan-clock seconds and the model's seconds."""
    return [(row["term"], _seconds(row["measuredSeconds"]), _seconds(row["planClockSeconds"]),
             _seconds(row["modelledSeconds"]) + (f" (not compared: {row['notCompared']})" if row["notCompared"] else ""))
            for row in result.terms()]


def _commands(result: ScenarioResult) -> list[str]:
    return [f"`{' '.join(c.argv)}`: exit {c.exit_code} after {_seconds(c.wall_seconds)}" for c in result.commands]


def _throughput(throughput: dict[str, Any]) -> str:
    return (f"throughput: dump {throughput.get('dumpMbPerSecond', '-')} MB/s, restore "
            f"{throughput.get('restoreMbPerSecond', '-')} MB/s ({throughput.get('restoredMb', '-')} MB restored; "
            f"the model assumes {throughput.get('assumedRestoreMbPerSecond', '-')} MB/s), replica lag "
            f"{throughput.get('replicaLagSeconds', '-')} s at most")


def _notes(result: ScenarioResult) -> list[str]:
    """What the scenario did, then (indented) its failure, a ledger that does not match and the model's findings."""
    lines = [f"{result.scenario}: {result.explanation}"]
    if result.failure:
        lines.append(f"  FAILED: {result.failure}")
    ledger = result.evidence.get("ledger") or {}
    if ledger and not ledger.get("ok"):
        lines.append(f"  ledger: {ledger['rows']} rows, checksums {'ok' if ledger['checksumOk'] else 'WRONG'}, "
                     f"acknowledged but missing {ledger['missing'][:10]}, not written by the client "
                     f"{ledger['foreign'][:10]}")
    return lines + [f"  model: {finding}" for finding in result.model_findings]


def _aligned(table: list[tuple[str, ...]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [indent + "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)) for row in table]


def text(results: list[ScenarioResult], world: dict[str, Any], throughput: dict[str, Any]) -> str:
    """The plain-text report."""
    lines = [f"recovery drill: database {world['databaseMb']:.0f} MB, {world['durationSeconds']:.0f} s, "
             f"time scale 1:{world['timeScale']:g}", *_aligned([COLUMNS, *rows(results)], "  "), "",
             _throughput(throughput)]
    for result in results:
        lines += _notes(result)
        if result.terms():
            lines += _aligned([TERM_COLUMNS, *term_rows(result)], "    ")
        lines += [f"    command {line}" for line in _commands(result)]
    lines += [CLOCKS, "estimates: core.recovery_model for this database size (they include the declared decision "
                      "time, which a drill does not measure)"]
    return "\n".join(lines)


def _table(header: tuple[str, ...], body: list[tuple[str, ...]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in body)]


def markdown(results: list[ScenarioResult], world: dict[str, Any], throughput: dict[str, Any]) -> str:
    """The Markdown record for the quarterly drill file."""
    lines = [f"# Recovery drill {world['startedAt']}", "",
             f"- database: {world['databaseMb']:.0f} MB; duration {world['durationSeconds']:.0f} s; "
             f"time scale 1:{world['timeScale']:g}; commit `{world.get('commit', '?')}`",
             f"- verdict: {'all objectives met' if all(r.met for r in results) else 'NOT MET'}", "",
             *_table(COLUMNS, rows(results)), "", f"- {_throughput(throughput)}",
             *[f"- {line.strip()}" for result in results for line in _notes(result)]]
    for result in results:
        if not (result.terms() or result.commands):
            continue
        lines += ["", f"## {result.scenario}", ""]
        if result.terms():
            lines += [*_table(TERM_COLUMNS, term_rows(result)), ""]
        for command, line in zip(result.commands, _commands(result), strict=True):
            lines.append(f"- {line}")
            if command.report:
                lines += ["", *(f"      {text_line}" for text_line in command.report.splitlines()), ""]
    if lines[-1]:
        lines.append("")
    lines += [f"{CLOCKS[0].upper()}{CLOCKS[1:]}. Measured on one machine with the stand-ins listed in "
              "docs/drill.md; estimates from core/recovery_model.py with this database size.", ""]
    return "\n".join(lines)
